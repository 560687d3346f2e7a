"""A small ordered router: behaviour modules register handlers for `event` or `event.action`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from webhooks.event import Event

if TYPE_CHECKING:
    from webhooks.context import Context

HandlerFn = Callable[["Context"], None]
ALWAYS_DELIVERED = {"installation", "installation_repositories"}


@dataclass(frozen=True)
class Handler:
    name: str
    keys: tuple[str, ...]
    fn: HandlerFn
    # Most handlers talk to GitHub and need an installation token; the rest can run on any delivery.
    needs_installation: bool = True
    # A test of the payload alone, for a key most of whose deliveries need nothing of the handler (a push that
    # changes no file the app reads): a delivery it declines is not routed to it, and one that no handler wants
    # is stored as ignored by the intake and never processed.
    wants: Callable[[Event], bool] | None = None


class Router:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        # key -> the places, in registration order, of the handlers listening to it; built at first use
        self._index: dict[str, list[int]] | None = None

    def on(
        self,
        *keys: str,
        name: str | None = None,
        needs_installation: bool = True,
        wants: Callable[[Event], bool] | None = None,
    ) -> Callable[[HandlerFn], HandlerFn]:
        """Decorator: `@router.on("issues.opened", "pull_request.opened")`."""

        def register(fn: HandlerFn) -> HandlerFn:
            handler_name = name or f"{fn.__module__}.{fn.__name__}"
            if any(h.name == handler_name for h in self._handlers):
                raise ValueError(f"handler {handler_name} registered twice")
            self._handlers.append(Handler(handler_name, tuple(keys), fn, needs_installation, wants))
            self._index = None
            return fn

        return register

    def include(self, other: Router) -> None:
        for handler in other._handlers:
            if any(h.name == handler.name for h in self._handlers):
                raise ValueError(f"handler {handler.name} registered twice")
            self._handlers.append(handler)
        self._index = None

    def handlers_for(self, event_name: str, action: str | None) -> list[Handler]:
        """In registration order. Looked up by key: every delivery asks twice (intake, job), and testing
        each of the app's ~40 handlers was 20 µs each time."""
        index = self._index if self._index is not None else self._indexed()
        places = index.get(event_name, [])
        if action and (by_action := index.get(f"{event_name}.{action}")):
            places = sorted({*places, *by_action})
        return [self._handlers[place] for place in places]

    def _indexed(self) -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        for place, handler in enumerate(self._handlers):
            for key in dict.fromkeys(handler.keys):
                index.setdefault(key, []).append(place)
        self._index = index
        return index

    def route(self, event: Event) -> tuple[list[Handler], str | None]:
        """The handlers for `event`, or the reason it triggers none (a bot sent it, nothing listens, no handler
        listening wants this one). The intake asks first: a delivery routed to none is stored as ignored."""
        reason = event.bot_reason()
        if reason:
            return [], reason
        listening = self.handlers_for(event.name, event.action)
        handlers = [handler for handler in listening if _wanted(handler, event)]
        if handlers:
            return handlers, None
        return [], f"no handler needs this {event.key}" if listening else f"no handler for {event.key}"

    @property
    def events(self) -> set[str]:
        """Event names (without actions) that some handler listens to: what app.yml must subscribe to
        (GitHub sends installation events to every App unasked, and refuses them in a manifest)."""
        events = {key.split(".", 1)[0] for h in self._handlers for key in h.keys} - ALWAYS_DELIVERED
        return {name for name in events if ":" not in name}  # `discourse:post_created`: another platform's

    @property
    def handlers(self) -> list[Handler]:
        return list(self._handlers)


def _wanted(handler: Handler, event: Event) -> bool:
    """A handler's own test; one that fails on an odd payload lets the delivery through, to the handler, whose
    failure is isolated, rather than failing the webhook's answer."""
    if handler.wants is None:
        return True
    try:
        return handler.wants(event)
    except Exception:
        return True


def compose(routers: Iterable[Router]) -> Router:
    combined = Router()
    for router in routers:
        combined.include(router)
    return combined
