"""The baseline model set: Pod as a user would write it with msgspec, without tricks.

Plain ``msgspec.Struct`` classes (the garbage collector tracks them, as by default),
camelCase wire names through ``rename="camel"``, every field optional, free-form parts
(``fieldsV1``, labels, resource quantities) as plain dicts. They cover every field the
benchmark pods carry, so that they decode as much as the clients' models do.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Base(msgspec.Struct, rename="camel"):
    pass


class OwnerReference(Base):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    uid: str | None = None
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(Base):
    manager: str | None = None
    operation: str | None = None
    api_version: str | None = None
    time: str | None = None
    fields_type: str | None = None
    fields_v1: dict[str, Any] | None = None
    subresource: str | None = None


class ObjectMeta(Base):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[ManagedFieldsEntry] | None = None


class ObjectFieldSelector(Base):
    api_version: str | None = None
    field_path: str | None = None


class EnvVarSource(Base):
    field_ref: ObjectFieldSelector | None = None


class EnvVar(Base):
    name: str | None = None
    value: str | None = None
    value_from: EnvVarSource | None = None


class ContainerPort(Base):
    name: str | None = None
    container_port: int | None = None
    protocol: str | None = None


class ResourceRequirements(Base):
    limits: dict[str, str] | None = None
    requests: dict[str, str] | None = None


class VolumeMount(Base):
    name: str | None = None
    read_only: bool | None = None
    mount_path: str | None = None


class HTTPGetAction(Base):
    path: str | None = None
    port: int | str | None = None
    scheme: str | None = None


class Probe(Base):
    http_get: HTTPGetAction | None = None
    timeout_seconds: int | None = None
    period_seconds: int | None = None
    success_threshold: int | None = None
    failure_threshold: int | None = None


class Container(Base):
    name: str | None = None
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    ports: list[ContainerPort] | None = None
    env: list[EnvVar] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None
    image_pull_policy: str | None = None


class KeyToPath(Base):
    key: str | None = None
    path: str | None = None


class ConfigMapVolumeSource(Base):
    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None


class ServiceAccountTokenProjection(Base):
    expiration_seconds: int | None = None
    path: str | None = None


class VolumeProjection(Base):
    service_account_token: ServiceAccountTokenProjection | None = None
    config_map: ConfigMapVolumeSource | None = None


class ProjectedVolumeSource(Base):
    sources: list[VolumeProjection] | None = None
    default_mode: int | None = None


class Volume(Base):
    name: str | None = None
    config_map: ConfigMapVolumeSource | None = None
    projected: ProjectedVolumeSource | None = None


class Toleration(Base):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


class PodSpec(Base):
    volumes: list[Volume] | None = None
    containers: list[Container] | None = None
    restart_policy: str | None = None
    termination_grace_period_seconds: int | None = None
    dns_policy: str | None = None
    service_account_name: str | None = None
    service_account: str | None = None
    node_name: str | None = None
    security_context: dict[str, Any] | None = None
    scheduler_name: str | None = None
    tolerations: list[Toleration] | None = None
    priority: int | None = None
    enable_service_links: bool | None = None
    preemption_policy: str | None = None


class PodCondition(Base):
    type: str | None = None
    status: str | None = None
    last_probe_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(Base):
    started_at: str | None = None


class ContainerState(Base):
    running: ContainerStateRunning | None = None
    waiting: dict[str, Any] | None = None
    terminated: dict[str, Any] | None = None


class ContainerStatus(Base):
    name: str | None = None
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    ready: bool | None = None
    restart_count: int | None = None
    image: str | None = None
    image_id: str | None = msgspec.field(default=None, name="imageID")
    container_id: str | None = msgspec.field(default=None, name="containerID")
    started: bool | None = None


class HostIP(Base):
    ip: str | None = None


class PodStatus(Base):
    phase: str | None = None
    conditions: list[PodCondition] | None = None
    host_ip: str | None = msgspec.field(default=None, name="hostIP")
    host_ips: list[HostIP] | None = msgspec.field(default=None, name="hostIPs")
    pod_ip: str | None = msgspec.field(default=None, name="podIP")
    pod_ips: list[HostIP] | None = msgspec.field(default=None, name="podIPs")
    start_time: str | None = None
    container_statuses: list[ContainerStatus] | None = None
    qos_class: str | None = None


class Pod(Base):
    kind: str | None = None
    api_version: str | None = None
    metadata: ObjectMeta | None = None
    spec: PodSpec | None = None
    status: PodStatus | None = None


class ListMeta(Base):
    resource_version: str | None = None
    continue_: str | None = msgspec.field(default=None, name="continue")
    remaining_item_count: int | None = None


class PodList(Base):
    kind: str | None = None
    api_version: str | None = None
    metadata: ListMeta | None = None
    items: list[Pod] = []


class WatchEvent(Base, Generic[T]):
    type: str
    object: T
