from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DiffRequest(_message.Message):
    __slots__ = ("old", "new", "max_checks")
    OLD_FIELD_NUMBER: _ClassVar[int]
    NEW_FIELD_NUMBER: _ClassVar[int]
    MAX_CHECKS_FIELD_NUMBER: _ClassVar[int]
    old: str
    new: str
    max_checks: int
    def __init__(self, old: _Optional[str] = ..., new: _Optional[str] = ..., max_checks: _Optional[int] = ...) -> None: ...

class ImpactRequest(_message.Message):
    __slots__ = ("candidate", "baseline")
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    candidate: str
    baseline: str
    def __init__(self, candidate: _Optional[str] = ..., baseline: _Optional[str] = ...) -> None: ...

class WhoCanRequest(_message.Message):
    __slots__ = ("action", "resource", "context", "limit", "page_token")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    action: str
    resource: str
    context: _struct_pb2.Struct
    limit: int
    page_token: str
    def __init__(self, action: _Optional[str] = ..., resource: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class WhatCanRequest(_message.Message):
    __slots__ = ("principal", "service", "resource_pattern", "limit")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_PATTERN_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    principal: str
    service: str
    resource_pattern: str
    limit: int
    def __init__(self, principal: _Optional[str] = ..., service: _Optional[str] = ..., resource_pattern: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Struct
    def __init__(self, result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
