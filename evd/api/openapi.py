"""The OpenAPI 3 document of the API, made from the route table (routes.py) that the server serves."""

import re

import evd

from .routes import PRIVATE, READ

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
}


def document(routes, title):
    paths = {}
    for route in routes:
        operation = {
            "summary": route.summary,
            "responses": {
                str(route.status): {"description": "success", "content": {"application/json": {}}},
                "default": {"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        if route.access != READ:
            operation["security"] = [{"bearer": []}]
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in re.findall(r"{(\w+)}", route.path)
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": f"EVCharging central ({title})", "version": evd.__version__},
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "x-private": [r.path for r in routes if r.access == PRIVATE],
    }
