import pytest

from webhooks.signature import SignatureError, sign, verify

BODY = b'{"zen": "Keep it logically awesome."}'


@pytest.mark.parametrize(
    "header, secret, body, problem",
    [
        pytest.param(None, "s3cret", BODY, "missing X-Hub-Signature-256", id="missing header is refused"),
        pytest.param("", "s3cret", BODY, "missing X-Hub-Signature-256", id="empty header is refused"),
        pytest.param("sha1=abc", "s3cret", BODY, "must start with 'sha256='", id="legacy sha1 header is refused"),
        pytest.param(sign("other", BODY), "s3cret", BODY, "check WEBHOOK_SECRET", id="wrong secret names the fix"),
        pytest.param(sign("s3cret", BODY), "s3cret", BODY[:-1], "does not match", id="truncated body is refused"),
        pytest.param(sign("s3cret", BODY)[:-2], "s3cret", BODY, "does not match", id="truncated signature is refused"),
    ],
)
def test_bad_signatures_are_refused_with_a_reason(header, secret, body, problem):
    with pytest.raises(SignatureError, match=problem):
        verify(secret, body, header)


def test_githubs_documented_example_verifies():
    # From GitHub's "Validating webhook deliveries": secret "It's a Secret to Everybody", payload "Hello, World!".
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign("It's a Secret to Everybody", b"Hello, World!") == expected
    verify("It's a Secret to Everybody", b"Hello, World!", expected)
