from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Value(_message.Message):
    __slots__ = ("string_value", "int_value", "double_value", "bool_value", "list_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    int_value: int
    double_value: float
    bool_value: bool
    list_value: ValueList
    def __init__(self, string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., list_value: _Optional[_Union[ValueList, _Mapping]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class IsAuthorizedRequest(_message.Message):
    __slots__ = ("principal", "action", "resource", "context", "request_id", "principal_type")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    principal: str
    action: str
    resource: str
    context: _containers.MessageMap[str, Value]
    request_id: str
    principal_type: str
    def __init__(self, principal: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., context: _Optional[_Mapping[str, Value]] = ..., request_id: _Optional[str] = ..., principal_type: _Optional[str] = ...) -> None: ...

class MatchedStatement(_message.Message):
    __slots__ = ("policy", "statement", "sid", "effect")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    SID_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    policy: str
    statement: int
    sid: str
    effect: str
    def __init__(self, policy: _Optional[str] = ..., statement: _Optional[int] = ..., sid: _Optional[str] = ..., effect: _Optional[str] = ...) -> None: ...

class IsAuthorizedResponse(_message.Message):
    __slots__ = ("decision", "reason", "matched", "errors", "policy_version", "root")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    decision: str
    reason: str
    matched: _containers.RepeatedCompositeFieldContainer[MatchedStatement]
    errors: _containers.RepeatedScalarFieldContainer[str]
    policy_version: str
    root: bool
    def __init__(self, decision: _Optional[str] = ..., reason: _Optional[str] = ..., matched: _Optional[_Iterable[_Union[MatchedStatement, _Mapping]]] = ..., errors: _Optional[_Iterable[str]] = ..., policy_version: _Optional[str] = ..., root: _Optional[bool] = ...) -> None: ...

class BatchIsAuthorizedRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[IsAuthorizedRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[IsAuthorizedRequest, _Mapping]]] = ...) -> None: ...

class BatchIsAuthorizedResponse(_message.Message):
    __slots__ = ("results", "policy_version")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IsAuthorizedResponse]
    policy_version: str
    def __init__(self, results: _Optional[_Iterable[_Union[IsAuthorizedResponse, _Mapping]]] = ..., policy_version: _Optional[str] = ...) -> None: ...
