"""Requests read against botocore's service model of the AWS API they go to, as AWS reads them.

botocore checks a request before it sends it (required members, types, minimum lengths and values); the rest
of the model — maximum lengths, sizes and values, enums, patterns — only AWS checks, after the request has
left this machine (moto checks none of it). ``request_problems`` checks both, offline, so a request AWS would
refuse is refused here, before anything is uploaded or created.
"""
from __future__ import annotations

from typing import Any

NUMBERS = ("integer", "long", "float", "double")


def request_problems(client, method: str, params: dict[str, Any]) -> list[str]:
    """Every way ``params`` breaks the input shape of operation ``method`` (a boto3 method name such as
    ``create_training_job``, or the API name) of ``client``'s service, one line each (empty: AWS would accept
    the request's form). botocore's own ``ParamValidator`` first, then the limits botocore leaves to AWS."""
    from botocore.validate import ParamValidator  # optional (syne-prune[sagemaker])

    operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping.get(method, method))
    report = ParamValidator().validate(params, operation.input_shape)
    problems = [line.strip() for line in report.generate_report().splitlines() if line.strip()] if report.has_errors() else []
    _walk(operation.input_shape, params, "", problems)
    return problems


def shape_limits(client, shape_name: str) -> tuple[float | None, float | None]:
    """``(min, max)`` of a shape of ``client``'s service model (None where the model sets none)."""
    metadata = client.meta.service_model.shape_for(shape_name).metadata
    return metadata.get("min"), metadata.get("max")


def pattern_matches(pattern: str, value: str) -> bool | None:
    """Whether ``value`` matches the model's ``pattern`` as a whole, as AWS checks it (the model's patterns use
    Unicode classes such as ``\\p{L}``, which the ``regex`` package reads; it comes with transformers). None when
    the pattern cannot be read here."""
    try:
        import regex  # optional: \p{...} classes; installed with transformers
    except ImportError:
        return None
    try:
        return regex.fullmatch(pattern, value) is not None
    except regex.error:
        return None


def _walk(shape, value: Any, path: str, problems: list[str]) -> None:
    """Append what ``value`` breaks of ``shape``'s maximum, enum and pattern, and recurse into its members."""
    kind, metadata = shape.type_name, shape.metadata
    if kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                _walk(shape.members[name], member, f"{path}.{name}" if path else name, problems)
    elif kind == "list" and isinstance(value, (list, tuple)):
        _at_most(len(value), metadata.get("max"), path, "length", problems)
        for index, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "map" and isinstance(value, dict):
        _at_most(len(value), metadata.get("max"), path, "length", problems)
        for key, item in value.items():
            _walk(shape.key, key, f"{path} (key)", problems)
            _walk(shape.value, item, f"{path}.{key}", problems)
    elif kind == "string" and isinstance(value, str):
        _at_most(len(value), metadata.get("max"), path, "length", problems)
        if shape.enum and value not in shape.enum:
            shown = ", ".join(shape.enum[:8]) + (", ..." if len(shape.enum) > 8 else "")
            problems.append(f"Invalid value for parameter {path}, value: {value!r}, valid values: {shown}")
        pattern = metadata.get("pattern")
        if pattern and pattern_matches(pattern, value) is False:
            problems.append(f"Invalid value for parameter {path}, value: {value[:80]!r}, must match the pattern {pattern}")
    elif kind in NUMBERS and isinstance(value, (int, float)) and not isinstance(value, bool):
        _at_most(value, metadata.get("max"), path, "range", problems)


def _at_most(size: float, maximum: float | None, path: str, what: str, problems: list[str]) -> None:
    if maximum is not None and size > maximum:
        problems.append(f"Invalid {what} for parameter {path}, value: {size}, valid max {what}: {maximum}")
