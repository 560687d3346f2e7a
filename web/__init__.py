"""Server-rendered web pages and the pieces they are drawn from."""
