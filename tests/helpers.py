"""Small helpers shared by the test modules (waiting and ports: the stack package)."""

from io import BytesIO

from PIL import Image


def png_bytes(size: tuple[int, int] = (300, 200), color: str = "teal") -> bytes:
    buffer = BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()
