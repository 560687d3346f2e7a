"""Which language to answer in: Chinese when the text is mostly Chinese, English otherwise."""

from __future__ import annotations

import re

import catalogs

_CODE = re.compile(r"```.*?```|`[^`]*`|https?://\S+|<!--.*?-->", re.S)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def strip_code(text: str) -> str:
    """The prose of a Markdown text: code, links and HTML comments removed."""
    return _CODE.sub(" ", text)


def detect(text: str) -> str:
    """'zh' or 'en'. Code, links and comments are left out; a Han character counts like a word."""
    prose = _CODE.sub(" ", text or "")
    han = len(_HAN.findall(prose))
    words = len(_LATIN_WORD.findall(prose))
    return "zh" if han and han >= words else "en"


def answer_in(setting: str, text: str) -> str:
    """The language a repository's `language:` setting names (any with a bot catalog), else, for `auto`,
    the language of `text`."""
    return setting if setting in catalogs.languages(catalogs.BOT) else detect(text)
