from google.protobuf import struct_pb2 as _struct_pb2
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
    __slots__ = ("principal", "action", "resource", "context", "request_id", "principal_type", "session", "explain")
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
    SESSION_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    principal: str
    action: str
    resource: str
    context: _containers.MessageMap[str, Value]
    request_id: str
    principal_type: str
    session: Session
    explain: bool
    def __init__(self, principal: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., context: _Optional[_Mapping[str, Value]] = ..., request_id: _Optional[str] = ..., principal_type: _Optional[str] = ..., session: _Optional[_Union[Session, _Mapping]] = ..., explain: _Optional[bool] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("policies_json", "policy_arns", "tags", "transitive_tag_keys", "mfa_present", "mfa_age", "source_identity", "issued_at", "role_chain")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    POLICIES_JSON_FIELD_NUMBER: _ClassVar[int]
    POLICY_ARNS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TRANSITIVE_TAG_KEYS_FIELD_NUMBER: _ClassVar[int]
    MFA_PRESENT_FIELD_NUMBER: _ClassVar[int]
    MFA_AGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    ROLE_CHAIN_FIELD_NUMBER: _ClassVar[int]
    policies_json: _containers.RepeatedScalarFieldContainer[str]
    policy_arns: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.ScalarMap[str, str]
    transitive_tag_keys: _containers.RepeatedScalarFieldContainer[str]
    mfa_present: bool
    mfa_age: int
    source_identity: str
    issued_at: str
    role_chain: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, policies_json: _Optional[_Iterable[str]] = ..., policy_arns: _Optional[_Iterable[str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., transitive_tag_keys: _Optional[_Iterable[str]] = ..., mfa_present: _Optional[bool] = ..., mfa_age: _Optional[int] = ..., source_identity: _Optional[str] = ..., issued_at: _Optional[str] = ..., role_chain: _Optional[_Iterable[str]] = ...) -> None: ...

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
    __slots__ = ("decision", "reason", "matched", "errors", "policy_version", "root", "layers", "blocked_by", "explanation")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_BY_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    decision: str
    reason: str
    matched: _containers.RepeatedCompositeFieldContainer[MatchedStatement]
    errors: _containers.RepeatedScalarFieldContainer[str]
    policy_version: str
    root: bool
    layers: _containers.RepeatedScalarFieldContainer[str]
    blocked_by: _containers.RepeatedScalarFieldContainer[str]
    explanation: _struct_pb2.Struct
    def __init__(self, decision: _Optional[str] = ..., reason: _Optional[str] = ..., matched: _Optional[_Iterable[_Union[MatchedStatement, _Mapping]]] = ..., errors: _Optional[_Iterable[str]] = ..., policy_version: _Optional[str] = ..., root: _Optional[bool] = ..., layers: _Optional[_Iterable[str]] = ..., blocked_by: _Optional[_Iterable[str]] = ..., explanation: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

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
