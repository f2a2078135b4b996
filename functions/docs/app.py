"""Docs function, deployed only when the ApiDocs parameter is `enabled`.

It serves the API's OpenAPI document (openapi.json beside this file, generated
by `make openapi` and committed) at /openapi.json, and a Swagger UI viewer at
/docs whose assets come from the Powertools wheel in the layer, not a CDN. The
API function never builds or serves a document, so its cold start pays nothing
for one.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).with_name("openapi.json")
ASSET_TYPES = {
    "swagger-ui-bundle.min.js": "text/javascript; charset=utf-8",
    "swagger-ui.min.css": "text/css; charset=utf-8",
}
# Relative URLs, so the viewer also works under a stage or a custom domain's base path. No
# validator: Swagger UI would otherwise send the document's URL to validator.swagger.io.
VIEWER = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Discord invite proxy API</title>
<link rel="stylesheet" href="docs/swagger-ui.min.css">
</head>
<body>
<main id="swagger-ui"></main>
<script src="docs/swagger-ui-bundle.min.js"></script>
<script>
SwaggerUIBundle({
  url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: "none"
});
</script>
</body>
</html>
"""


def _swagger_ui() -> Path:
    # Located without importing Powertools: the wheel ships these files beside its code.
    spec = find_spec("aws_lambda_powertools")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("aws_lambda_powertools is not installed (the layer provides it)")
    return Path(spec.submodule_search_locations[0]) / "event_handler" / "openapi" / "swagger_ui"


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _answer(status: int, content_type: str, body: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, "Cache-Control": "public, max-age=300"},
        "body": body,
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    path = event.get("rawPath", "")
    if path == "/openapi.json":
        return _answer(200, "application/json", _read(DOCUMENT))
    if path == "/docs":
        return _answer(200, "text/html; charset=utf-8", VIEWER)
    asset = (event.get("pathParameters") or {}).get("asset", "")
    if asset in ASSET_TYPES:
        return _answer(200, ASSET_TYPES[asset], _read(_swagger_ui() / asset))
    return {
        "statusCode": 404,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": '{"error": {"code": "not_found", "message": "No such document."}}',
    }
