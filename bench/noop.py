"""The RQ no-op job the benchmark compares delivery processing with."""


def noop(delivery_id: str) -> None:
    return None
