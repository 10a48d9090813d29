"""Bilingual errors: every 4xx names the field and says why, in Chinese and English."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import DBAPIError

# Pydantic's error types, in the words a county clerk would use.
_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("必填项缺失", "this field is required"),
    "string_type": ("应为文本", "must be text"),
    "string_too_short": ("内容过短或为空", "too short or empty"),
    "string_too_long": ("内容过长", "too long"),
    "string_pattern_mismatch": ("格式不正确", "wrong format"),
    "enum": ("不是允许的取值", "not one of the allowed values"),
    "literal_error": ("不是允许的取值", "not one of the allowed values"),
    "date_from_datetime_parsing": ("日期格式应为 YYYY-MM-DD", "date must be YYYY-MM-DD"),
    "date_parsing": ("日期格式应为 YYYY-MM-DD", "date must be YYYY-MM-DD"),
    "date_type": ("日期格式应为 YYYY-MM-DD", "date must be YYYY-MM-DD"),
    "uuid_parsing": ("编号格式不正确", "not a valid id"),
    "int_parsing": ("应为整数", "must be a whole number"),
    "list_type": ("应为列表", "must be a list"),
    "model_type": ("应为对象", "must be an object"),
    "dict_type": ("应为对象", "must be an object"),
    "extra_forbidden": ("不认识的字段", "unknown field"),
    "json_invalid": ("请求体不是有效的 JSON", "the body is not valid JSON"),
    "greater_than_equal": ("数值过小", "value too small"),
    "less_than_equal": ("数值过大", "value too large"),
}


def bilingual(error_type: str, zh: str, en: str) -> PydanticCustomError:
    """Raise from a validator: ``raise bilingual("id_number_check", "校验码错误", "wrong check character")``."""
    return PydanticCustomError(error_type, en, {"message_zh": zh, "message_en": en})


def describe(err: dict) -> dict:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    ctx = err.get("ctx") or {}
    zh, en = _MESSAGES.get(err["type"], ("取值无效", err.get("msg", "invalid value")))
    if "message_zh" in ctx:
        zh, en = ctx["message_zh"], ctx["message_en"]
    elif err["type"] in ("enum", "literal_error") and "expected" in ctx:
        zh, en = f"{zh}: {ctx['expected']}", f"{en}: {ctx['expected']}"
    return {"field": ".".join(loc) or "body", "type": err["type"], "message_zh": zh, "message_en": en}


def error_body(errors: list[dict]) -> dict:
    return {
        "message_zh": "提交的数据有误，未保存任何内容",
        "message_en": "the request has errors; nothing was saved",
        "errors": errors,
    }


_TEXT = {"type": "string"}
_BODY = {
    "type": "object", "required": ["message_zh", "message_en"],
    "properties": {"message_zh": _TEXT, "message_en": _TEXT, "errors": {"type": "array", "items": {
        "type": "object", "required": ["field", "message_zh", "message_en"],
        "properties": {"field": _TEXT, "type": _TEXT, "message_zh": _TEXT, "message_en": _TEXT},
    }}},
}
# What a 422 holds: the body above from the request's validation, or under "detail" when a handler
# refuses (HTTPException). FastAPI would document its own shape, which no response has.
VALIDATION_ERROR_SCHEMA = {"anyOf": [_BODY, {"type": "object", "required": ["detail"], "properties": {"detail": _BODY}}]}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body([describe(e) for e in exc.errors()]), status_code=422)

    @app.exception_handler(DBAPIError)
    async def _unstorable(request: Request, exc: DBAPIError) -> JSONResponse:
        # PostgreSQL text cannot hold the NUL character; a request carrying one is the client's error,
        # found wherever it is stored, so it is answered here rather than in every schema.
        if "0x00" not in str(exc.orig):
            raise exc
        return JSONResponse(error_body([{
            "field": "body", "type": "nul_character", "message_zh": "文本中含有不可保存的空字符（\\u0000）",
            "message_en": "the text contains the NUL character (\\u0000), which cannot be stored",
        }]), status_code=422)

    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schemas = generate().get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = VALIDATION_ERROR_SCHEMA
        return app.openapi_schema

    app.openapi = openapi
