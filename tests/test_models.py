"""Tests of the generated models (``kubeasync.models``) and of ``tools/gen_models.py``."""

from __future__ import annotations

import copy
import doctest
import importlib.util
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

import kubeasync.models as models
from kubeasync.models import (
    ConfigMap,
    Container,
    ContainerPort,
    HTTPGetAction,
    Job,
    KubeModel,
    ListMeta,
    ManagedFieldsEntry,
    Namespace,
    ObjectMeta,
    PersistentVolumeClaim,
    Pod,
    PodIP,
    PodList,
    PodSpec,
    PodStatus,
    Probe,
    Service,
    ServiceList,
    ServicePort,
    ServiceSpec,
    Status,
    WatchEvent,
    _base,
    format_time,
    parse_time,
)

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO / "src" / "kubeasync" / "models"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_models", REPO / "tools" / "gen_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_models"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


gen_models = _load_generator()
GVK_KEY = "x-kubernetes-group-version-kind"

FLAT_0_1: dict[str, str] = {
    name: module
    for module, names in {
        "batch_v1": """
            Job JobCondition JobList JobSchedulingConfiguration JobSpec JobStatus
            PodFailurePolicy PodFailurePolicyOnExitCodesRequirement
            PodFailurePolicyOnPodConditionsPattern PodFailurePolicyRule SuccessPolicy
            SuccessPolicyRule UncountedTerminatedPods
        """,
        "core_v1": """
            Affinity AppArmorProfile AWSElasticBlockStoreVolumeSource
            AzureDiskVolumeSource AzureFileVolumeSource Capabilities CephFSVolumeSource
            CinderVolumeSource ClientIPConfig ClusterTrustBundleProjection ConfigMap
            ConfigMapEnvSource ConfigMapKeySelector ConfigMapList ConfigMapProjection
            ConfigMapVolumeSource Container ContainerExtendedResourceRequest
            ContainerPort ContainerResizePolicy ContainerRestartRule
            ContainerRestartRuleOnExitCodes ContainerState ContainerStateRunning
            ContainerStateTerminated ContainerStateWaiting ContainerStatus ContainerUser
            CSIVolumeSource DownwardAPIProjection DownwardAPIVolumeFile
            DownwardAPIVolumeSource EmptyDirVolumeSource EnvFromSource EnvVar
            EnvVarSource EphemeralContainer EphemeralVolumeSource EvictionResponder
            ExecAction FCVolumeSource FileKeySelector FlexVolumeSource
            FlockerVolumeSource GCEPersistentDiskVolumeSource GitRepoVolumeSource
            GlusterfsVolumeSource GRPCAction HostAlias HostIP HostPathVolumeSource
            HTTPGetAction HTTPHeader ImageVolumeSource ImageVolumeStatus
            ISCSIVolumeSource KeyToPath Lifecycle LifecycleHandler LinuxContainerUser
            LoadBalancerIngress LoadBalancerStatus LocalObjectReference
            ModifyVolumeStatus Namespace NamespaceCondition NamespaceList NamespaceSpec
            NamespaceStatus NFSVolumeSource NodeAffinity NodeAllocatableMappedResources
            NodeAllocatableOverheadResources NodeAllocatableResourceClaimStatus
            NodeSelector NodeSelectorRequirement NodeSelectorTerm ObjectFieldSelector
            PersistentVolumeClaim PersistentVolumeClaimCondition
            PersistentVolumeClaimList PersistentVolumeClaimSpec
            PersistentVolumeClaimStatus PersistentVolumeClaimTemplate
            PersistentVolumeClaimVolumeSource PhotonPersistentDiskVolumeSource Pod
            PodAffinity PodAffinityTerm PodAntiAffinity PodCertificateProjection
            PodCondition PodDNSConfig PodDNSConfigOption PodExtendedResourceClaimStatus
            PodIP PodList PodOS PodReadinessGate PodResourceClaim PodResourceClaimStatus
            PodSchedulingGate PodSchedulingGroup PodSecurityContext PodSpec PodStatus
            PodTemplateSpec PodVolumeHealth PortStatus PortworxVolumeSource
            PreferredSchedulingTerm Probe ProjectedVolumeSource QuobyteVolumeSource
            RBDVolumeSource ResourceClaim ResourceFieldSelector ResourceHealth
            ResourceRequirements ResourceStatus ScaleIOVolumeSource SeccompProfile
            SecretEnvSource SecretKeySelector SecretProjection SecretVolumeSource
            SecurityContext SELinuxOptions Service ServiceAccountTokenProjection
            ServiceList ServicePort ServiceSpec ServiceStatus SessionAffinityConfig
            SleepAction StorageOSVolumeSource Sysctl TCPSocketAction Toleration
            TopologySpreadConstraint TypedLocalObjectReference TypedObjectReference
            Volume VolumeDevice VolumeHealthCondition VolumeHealthStatus VolumeMount
            VolumeMountStatus VolumeProjection VolumeResourceRequirements VolumeStatus
            VsphereVirtualDiskVolumeSource WeightedPodAffinityTerm
            WindowsSecurityContextOptions
        """,
        "meta_v1": """
            APIGroup APIGroupList APIResource APIResourceList APIVersions Condition
            DeleteOptions FieldSelectorRequirement GroupResource
            GroupVersionForDiscovery LabelSelector LabelSelectorRequirement ListMeta
            ManagedFieldsEntry ObjectMeta OwnerReference Patch Preconditions
            ServerAddressByClientCIDR ShardInfo Status StatusCause StatusDetails
            WatchEvent
        """,
        "scheduling_v1alpha3": """
            TopologyConstraint WorkloadPodGroupAllDisruptionMode
            WorkloadPodGroupBasicSchedulingPolicy WorkloadPodGroupDisruptionMode
            WorkloadPodGroupGangSchedulingPolicy WorkloadPodGroupResourceClaim
            WorkloadPodGroupSchedulingConstraints WorkloadPodGroupSchedulingPolicy
            WorkloadPodGroupSingleDisruptionMode
        """,
        "version": """
            Info
        """,
    }.items()
    for name in names.split()
}
"""The names kubeasync.models exported in 0.1 (other than _base's), by module."""


def model_modules() -> list[ModuleType]:
    """Every generated group-version module."""
    return [
        importlib.import_module(f"kubeasync.models.{path.stem}")
        for path in sorted(MODELS_DIR.glob("*.py"))
        if not path.stem.startswith("_")
    ]


def model_classes() -> list[type[KubeModel]]:
    """Every generated class of every module."""
    out = []
    for module in model_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, KubeModel) and obj is not KubeModel:
                out.append(obj)
    return out


def never_none_fields(cls: type[KubeModel]) -> set[str]:
    """The fields of a class that are never None: a kind's metadata, a list's items."""
    return {
        f.name for f in msgspec.structs.fields(cls) if f.default_factory is not msgspec.NODEFAULT
    }


# --------------------------------------------------------------------------------------------
# realistic, apiserver-shaped objects (only fields the models know, no nulls)

MANAGED_FIELDS = [
    {
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2024-05-01T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:annotations": {
                    ".": {},
                    "f:kubectl.kubernetes.io/last-applied-configuration": {},
                },
                "f:labels": {".": {}, "f:app": {}, "f:tier": {}},
                "f:ownerReferences": {
                    ".": {},
                    'k:{"uid":"5b1c7f43-6f7e-4b8e-9d65-0c1e2c7e0a11"}': {},
                },
            },
            "f:spec": {
                "f:containers": {
                    'k:{"name":"app"}': {
                        ".": {},
                        "f:image": {},
                        "f:imagePullPolicy": {},
                        "f:name": {},
                        "f:ports": {
                            ".": {},
                            'k:{"containerPort":8080,"protocol":"TCP"}': {
                                ".": {},
                                "f:containerPort": {},
                                "f:name": {},
                                "f:protocol": {},
                            },
                        },
                        "f:resources": {
                            ".": {},
                            "f:limits": {".": {}, "f:memory": {}},
                            "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}},
                        },
                    }
                },
                "f:restartPolicy": {},
            },
        },
    },
    {
        "manager": "kubelet",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2024-05-01T10:00:05Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:status": {
                "f:conditions": {
                    'k:{"type":"Ready"}': {
                        ".": {},
                        "f:lastProbeTime": {},
                        "f:lastTransitionTime": {},
                        "f:status": {},
                        "f:type": {},
                    }
                },
                "f:podIP": {},
                "f:podIPs": {".": {}, 'k:{"ip":"10.244.1.17"}': {".": {}, "f:ip": {}}},
            }
        },
        "subresource": "status",
    },
]

POD: dict[str, Any] = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {
        "name": "web-7d9f8b6c5d-x2x9k",
        "generateName": "web-7d9f8b6c5d-",
        "namespace": "shop",
        "uid": "0f3c7a6e-2d1b-4c7e-9a51-6b2f0e4d8c21",
        "resourceVersion": "184467",
        "generation": 1,
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d", "tier": "frontend"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1"}\n',
            "prometheus.io/scrape": "true",
        },
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-7d9f8b6c5d",
                "uid": "5b1c7f43-6f7e-4b8e-9d65-0c1e2c7e0a11",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "finalizers": ["example.com/cleanup"],
        "managedFields": MANAGED_FIELDS,
    },
    "spec": {
        "volumes": [
            {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
            {
                "name": "kube-api-access-abcde",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                    ],
                    "defaultMode": 420,
                },
            },
        ],
        "containers": [
            {
                "name": "app",
                "image": "registry.example.com/shop/web:1.4.2",
                "command": ["/app/server"],
                "args": ["--port=8080", "--log-level=info"],
                "ports": [
                    {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                ],
                "env": [
                    {"name": "LOG_FORMAT", "value": "json"},
                    {
                        "name": "POD_IP",
                        "valueFrom": {
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}
                        },
                    },
                    {
                        "name": "DB_PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
                    },
                ],
                "resources": {
                    "limits": {"memory": "256Mi"},
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                },
                "volumeMounts": [
                    {"name": "config", "readOnly": True, "mountPath": "/etc/web"},
                    {
                        "name": "kube-api-access-abcde",
                        "readOnly": True,
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    },
                ],
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                    "initialDelaySeconds": 5,
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"},
                    "timeoutSeconds": 1,
                    "periodSeconds": 5,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 1000,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            },
            {
                "name": "sidecar",
                "image": "registry.example.com/tools/log-shipper:0.9",
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            },
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "nodeName": "node-1",
        "securityContext": {"fsGroup": 2000},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
        ],
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    },
    "status": {
        "phase": "Running",
        "conditions": [
            {
                "type": "Initialized",
                "status": "True",
                "lastProbeTime": "2024-05-01T10:00:00Z",
                "lastTransitionTime": "2024-05-01T10:00:01Z",
            },
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": "2024-05-01T10:00:05Z",
            },
        ],
        "hostIP": "192.168.0.11",
        "hostIPs": [{"ip": "192.168.0.11"}],
        "podIP": "10.244.1.17",
        "podIPs": [{"ip": "10.244.1.17"}, {"ip": "fd00:10:244:1::11"}],
        "startTime": "2024-05-01T10:00:00.123456Z",
        "containerStatuses": [
            {
                "name": "app",
                "state": {"running": {"startedAt": "2024-05-01T10:00:03Z"}},
                "lastState": {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "OOMKilled",
                        "startedAt": "2024-05-01T09:00:00Z",
                        "finishedAt": "2024-05-01T09:59:59Z",
                        "containerID": "containerd://9f1e",
                    }
                },
                "ready": True,
                "restartCount": 1,
                "image": "registry.example.com/shop/web:1.4.2",
                "imageID": "registry.example.com/shop/web@sha256:0123abcd",
                "containerID": "containerd://4a5b",
                "started": True,
            },
            {
                "name": "sidecar",
                "state": {"waiting": {"reason": "ContainerCreating"}},
                "ready": False,
                "restartCount": 0,
                "image": "registry.example.com/tools/log-shipper:0.9",
                "imageID": "",
            },
        ],
        "qosClass": "Burstable",
    },
}

JOB: dict[str, Any] = {
    "kind": "Job",
    "apiVersion": "batch/v1",
    "metadata": {
        "name": "report-28571234",
        "namespace": "shop",
        "uid": "c5d0e2a1-7b0f-4f37-8a43-3e1c2b9d4f10",
        "resourceVersion": "9001",
        "generation": 1,
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"batch.kubernetes.io/job-name": "report-28571234"},
        "finalizers": ["batch.kubernetes.io/job-tracking"],
    },
    "spec": {
        "parallelism": 2,
        "completions": 4,
        "backoffLimit": 6,
        "activeDeadlineSeconds": 600,
        "ttlSecondsAfterFinished": 3600,
        "completionMode": "Indexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
        "manualSelector": False,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "c5d0e2a1"}},
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
                }
            ]
        },
        "template": {
            "metadata": {"labels": {"batch.kubernetes.io/job-name": "report-28571234"}},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox:1.36",
                        "command": ["sh", "-c", "echo hello"],
                        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                    }
                ],
                "restartPolicy": "Never",
            },
        },
    },
    "status": {
        "startTime": "2024-05-01T10:00:01Z",
        "active": 2,
        "succeeded": 1,
        "failed": 0,
        "ready": 2,
        "terminating": 0,
        "completedIndexes": "0",
        "uncountedTerminatedPods": {"succeeded": ["a1b2"]},
        "conditions": [
            {
                "type": "SuccessCriteriaMet",
                "status": "False",
                "lastProbeTime": "2024-05-01T10:00:02Z",
                "lastTransitionTime": "2024-05-01T10:00:02Z",
                "reason": "InProgress",
                "message": "still running",
            }
        ],
    },
}

SERVICE: dict[str, Any] = {
    "kind": "Service",
    "apiVersion": "v1",
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "1d6f3f6c-0e5b-4a4e-8a0b-2f9c5d7e6b31",
        "resourceVersion": "1234",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"app": "web"},
    },
    "spec": {
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "metrics"},
            {
                "name": "node",
                "protocol": "TCP",
                "port": 8443,
                "targetPort": 8443,
                "nodePort": 30443,
            },
        ],
        "selector": {"app": "web"},
        "clusterIP": "10.96.12.34",
        "clusterIPs": ["10.96.12.34", "fd00:10:96::1234"],
        "type": "NodePort",
        "sessionAffinity": "None",
        "externalTrafficPolicy": "Cluster",
        "externalIPs": ["203.0.113.10"],
        "ipFamilies": ["IPv4", "IPv6"],
        "ipFamilyPolicy": "PreferDualStack",
        "internalTrafficPolicy": "Cluster",
    },
    "status": {"loadBalancer": {}},
}

PVC: dict[str, Any] = {
    "kind": "PersistentVolumeClaim",
    "apiVersion": "v1",
    "metadata": {
        "name": "data-web-0",
        "namespace": "shop",
        "uid": "8e1c5b1a-3c58-4c2b-b3a7-d5b3fbc0e1a2",
        "resourceVersion": "777",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "annotations": {"pv.kubernetes.io/bind-completed": "yes"},
        "finalizers": ["kubernetes.io/pvc-protection"],
    },
    "spec": {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "volumeName": "pvc-8e1c5b1a",
        "storageClassName": "standard",
        "volumeMode": "Filesystem",
    },
    "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}},
}

NAMESPACE: dict[str, Any] = {
    "kind": "Namespace",
    "apiVersion": "v1",
    "metadata": {
        "name": "shop",
        "uid": "3f1e2d4c-5b6a-4789-8c0d-1e2f3a4b5c6d",
        "resourceVersion": "42",
        "creationTimestamp": "2024-05-01T09:00:00Z",
        "labels": {"kubernetes.io/metadata.name": "shop"},
    },
    "spec": {"finalizers": ["kubernetes"]},
    "status": {"phase": "Active"},
}

STATUS: dict[str, Any] = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": 'Pod "web-0" is invalid: spec.containers[0].image: Required value',
    "reason": "Invalid",
    "details": {
        "name": "web-0",
        "kind": "Pod",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.containers[0].image",
            }
        ],
        "retryAfterSeconds": 1,
    },
    "code": 422,
}

CONFIGMAP: dict[str, Any] = {
    "kind": "ConfigMap",
    "apiVersion": "v1",
    "metadata": {"name": "web-config", "namespace": "shop"},
    "data": {"app.yaml": "port: 8080\n"},
    "binaryData": {"blob": "AAEC"},
    "immutable": True,
}

POD_LIST: dict[str, Any] = {
    "kind": "PodList",
    "apiVersion": "v1",
    "metadata": {
        "resourceVersion": "184470",
        "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTg0NDcwLCJzdGFydCI6IndlYi0xIn0",
        "remainingItemCount": 17,
    },
    "items": [POD, {**POD, "metadata": {**POD["metadata"], "name": "web-1"}}],
}

ROUND_TRIP_CASES = [
    pytest.param(Pod, POD, id="Pod"),
    pytest.param(Job, JOB, id="Job"),
    pytest.param(Service, SERVICE, id="Service"),
    pytest.param(PersistentVolumeClaim, PVC, id="PersistentVolumeClaim"),
    pytest.param(Namespace, NAMESPACE, id="Namespace"),
    pytest.param(Status, STATUS, id="Status"),
    pytest.param(ConfigMap, CONFIGMAP, id="ConfigMap"),
    pytest.param(PodList, POD_LIST, id="PodList"),
    pytest.param(
        ServiceList,
        {"kind": "ServiceList", "metadata": {"resourceVersion": "9"}, "items": [SERVICE]},
        id="ServiceList",
    ),
    pytest.param(WatchEvent, {"type": "ADDED", "object": copy.deepcopy(POD)}, id="WatchEvent"),
]


def _walk_no_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for v in value.values():
            assert v is not None
            _walk_no_nulls(v)
    elif isinstance(value, list):
        for v in value:
            assert v is not None
            _walk_no_nulls(v)


# --------------------------------------------------------------------------------------------
# structure


def test_base_options() -> None:
    config = KubeModel.__struct_config__
    assert config.omit_defaults is True
    assert config.gc is False
    assert config.repr_omit_defaults is True
    assert config.forbid_unknown_fields is False


def test_exports() -> None:
    assert len(models.__all__) == len(set(models.__all__))
    for name in models.__all__:
        assert hasattr(models, name), name
    assert models.Time is str
    assert models.MicroTime is str
    assert models.IntOrString == int | str
    assert models.Quantity == str | int | float
    assert models.RawExtension == dict[str, Any]
    assert models.parse_time is parse_time


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        ObjectMeta("positional")  # type: ignore[call-arg,arg-type]
    for cls in model_classes():
        with pytest.raises(TypeError):
            cls(None)


def test_every_class_decodes_and_encodes() -> None:
    classes = model_classes()
    assert len(classes) > 700
    for cls in classes:
        assert cls.__struct_config__.gc is False, cls
        decoder = msgspec.json.Decoder(cls)
        empty = decoder.decode(b"{}")
        # An empty object encodes as {} but for the metadata that is never None.
        expected = b'{"metadata":{}}' if "metadata" in never_none_fields(cls) else b"{}"
        assert msgspec.json.encode(empty) == expected, cls
        # Every field may be null on the wire; the never-None ones decode as their default.
        nulls = {f.encode_name: None for f in msgspec.structs.fields(cls)}
        decoded = decoder.decode(msgspec.json.encode(nulls))
        for name in never_none_fields(cls):
            assert getattr(decoded, name) == getattr(empty, name), (cls, name)


def test_every_field_is_optional_none_except_fields_v1_metadata_and_items() -> None:
    never_none = 0
    for cls in model_classes():
        for f in msgspec.structs.fields(cls):
            if f.type is msgspec.Raw:
                assert f.encode_name == "fieldsV1", (cls, f.name)
                assert f.default == msgspec.Raw()
            elif f.name in never_none_fields(cls):
                # a kind's metadata, a list kind's items
                never_none += 1
                if f.name == "items":
                    assert cls.__name__.endswith("List"), cls
                    assert f.default_factory is list
                else:
                    assert f.name == "metadata", (cls, f.name)
                    assert f.default_factory in (ObjectMeta, ListMeta), cls
            else:
                assert f.default is None, (cls, f.name)
                assert f.name.isidentifier() and not f.name.startswith("_")
            assert f.name != "kind" or f.default is None
    assert never_none > 250


def test_never_none_fields_are_those_of_kinds_and_lists() -> None:
    assert never_none_fields(Pod) == {"metadata"}
    assert never_none_fields(PodList) == {"items", "metadata"}
    assert never_none_fields(Status) == {"metadata"}  # a kind, with ListMeta
    assert never_none_fields(models.PodTemplateSpec) == set()  # not a kind: stays Optional
    assert never_none_fields(ObjectMeta) == set()
    assert never_none_fields(WatchEvent) == set()


@pytest.mark.parametrize(
    ("cls", "attr", "wire"),
    [
        (Pod, "api_version", "apiVersion"),
        (PodStatus, "pod_ips", "podIPs"),
        (PodStatus, "host_ip", "hostIP"),
        (PodStatus, "pod_ip", "podIP"),
        (ServiceSpec, "external_ips", "externalIPs"),
        (ServiceSpec, "cluster_ips", "clusterIPs"),
        (ServiceSpec, "cluster_ip", "clusterIP"),
        (ManagedFieldsEntry, "fields_v1", "fieldsV1"),
        (ListMeta, "continue_", "continue"),
        (ListMeta, "remaining_item_count", "remainingItemCount"),
        (ObjectMeta, "creation_timestamp", "creationTimestamp"),
        (ContainerPort, "container_port", "containerPort"),
        (PodSpec, "termination_grace_period_seconds", "terminationGracePeriodSeconds"),
        (PodSpec, "set_hostname_as_fqdn", "setHostnameAsFQDN"),
        (models.ServerAddressByClientCIDR, "client_cidr", "clientCIDR"),
        (models.APIGroup, "server_address_by_client_cidrs", "serverAddressByClientCIDRs"),
        (models.ISCSIVolumeSource, "target_portal", "targetPortal"),
        (models.FCVolumeSource, "target_wwns", "targetWWNs"),
        (models.PodSecurityContext, "se_linux_options", "seLinuxOptions"),
        (models.ScaleIOVolumeSource, "protection_domain", "protectionDomain"),
        (models.Volume, "scale_io", "scaleIO"),
        (WatchEvent, "object", "object"),
        (WatchEvent, "type", "type"),
    ],
)
def test_attribute_names(cls: type[KubeModel], attr: str, wire: str) -> None:
    by_name = {f.name: f for f in msgspec.structs.fields(cls)}
    assert attr in by_name, sorted(by_name)
    assert by_name[attr].encode_name == wire


@pytest.mark.parametrize(
    ("wire", "attr"),
    [
        ("apiVersion", "api_version"),
        ("podIPs", "pod_ips"),
        ("hostIP", "host_ip"),
        ("externalIPs", "external_ips"),
        ("clusterIPs", "cluster_ips"),
        ("nonResourceURLs", "non_resource_urls"),
        ("fieldsV1", "fields_v1"),
        ("x-kubernetes-preserve-unknown-fields", "x_kubernetes_preserve_unknown_fields"),
        ("continue", "continue_"),
        ("from", "from_"),
        ("not", "not_"),
        ("$ref", "ref"),
        ("$schema", "schema"),
        ("HTTPGet", "http_get"),
        ("hostIPC", "host_ipc"),
        ("podCIDRs", "pod_cidrs"),
        ("datasetUUID", "dataset_uuid"),
        ("setHostnameAsFQDN", "set_hostname_as_fqdn"),
        ("ttlSecondsAfterFinished", "ttl_seconds_after_finished"),
        ("name", "name"),
    ],
)
def test_snake_case(wire: str, attr: str) -> None:
    assert gen_models.snake_case(wire) == attr


def test_keyword_field() -> None:
    meta = ListMeta(continue_="tok", remaining_item_count=3)
    assert msgspec.json.encode(meta) == b'{"continue":"tok","remainingItemCount":3}'
    decoded = msgspec.json.decode(b'{"continue":"abc","resourceVersion":"7"}', type=ListMeta)
    assert decoded.continue_ == "abc"
    assert decoded.resource_version == "7"


# --------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize(("cls", "document"), ROUND_TRIP_CASES)
def test_round_trip(cls: type[KubeModel], document: dict[str, Any]) -> None:
    _walk_no_nulls(document)
    data = json.dumps(document).encode()
    obj = msgspec.json.decode(data, type=cls)
    assert isinstance(obj, cls)
    assert json.loads(msgspec.json.encode(obj)) == json.loads(data)
    # and once more through a reused decoder, from the re-encoded bytes
    again = msgspec.json.Decoder(cls).decode(msgspec.json.encode(obj))
    assert again == obj


def test_decoded_pod_values() -> None:
    pod = msgspec.json.decode(json.dumps(POD).encode(), type=Pod)
    assert pod.metadata is not None and pod.spec is not None and pod.status is not None
    assert pod.api_version == "v1"
    assert pod.metadata.labels == {
        "app": "web",
        "pod-template-hash": "7d9f8b6c5d",
        "tier": "frontend",
    }
    assert pod.metadata.owner_references is not None
    assert pod.metadata.owner_references[0].block_owner_deletion is True
    assert pod.metadata.creation_timestamp == "2024-05-01T10:00:00Z"
    app, sidecar = pod.spec.containers or []
    assert isinstance(app, Container)
    assert app.ports is not None and app.ports[0].container_port == 8080
    assert app.resources is not None and app.resources.requests == {
        "cpu": "100m",
        "memory": "128Mi",
    }
    assert sidecar.name == "sidecar"
    assert isinstance(app.liveness_probe, Probe)
    assert isinstance(app.liveness_probe.http_get, HTTPGetAction)
    assert app.liveness_probe.http_get.port == 8080  # IntOrString as int
    assert app.readiness_probe is not None and app.readiness_probe.http_get is not None
    assert app.readiness_probe.http_get.port == "http"  # IntOrString as str
    assert pod.status.pod_ips == [PodIP(ip="10.244.1.17"), PodIP(ip="fd00:10:244:1::11")]
    assert pod.status.start_time == "2024-05-01T10:00:00.123456Z"
    assert parse_time(pod.status.start_time) == datetime(
        2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc
    )
    entries = pod.metadata.managed_fields or []
    assert all(isinstance(e.fields_v1, msgspec.Raw) for e in entries)
    assert msgspec.json.decode(entries[1].fields_v1) == MANAGED_FIELDS[1]["fieldsV1"]


def test_service_ports_int_or_string() -> None:
    svc = msgspec.json.decode(json.dumps(SERVICE).encode(), type=Service)
    assert svc.spec is not None and svc.spec.ports is not None
    assert [p.target_port for p in svc.spec.ports] == [8080, "metrics", 8443]
    assert svc.spec.cluster_ips == ["10.96.12.34", "fd00:10:96::1234"]
    port = ServicePort(port=80, target_port="http")
    assert msgspec.json.encode(port) == b'{"port":80,"targetPort":"http"}'


def test_quantities_keep_wire_value() -> None:
    pvc = msgspec.json.decode(json.dumps(PVC).encode(), type=PersistentVolumeClaim)
    assert pvc.status is not None and pvc.status.capacity == {"storage": "1Gi"}
    data = b'{"limits":{"cpu":2,"memory":"1Gi","nvidia.com/gpu":0.5}}'
    req = msgspec.json.decode(data, type=models.ResourceRequirements)
    assert req.limits == {"cpu": 2, "memory": "1Gi", "nvidia.com/gpu": 0.5}
    assert msgspec.json.encode(req) == data


def test_status_details() -> None:
    status = msgspec.json.decode(json.dumps(STATUS).encode(), type=Status)
    assert status.code == 422 and status.reason == "Invalid"
    assert status.details is not None and status.details.causes is not None
    assert status.details.causes[0].field == "spec.containers[0].image"
    assert status.details.retry_after_seconds == 1


# --------------------------------------------------------------------------------------------
# defaults, unknown fields, nulls


def test_unset_fields_are_omitted() -> None:
    # metadata is never None: Pod() has an empty ObjectMeta, written as {}; an empty items
    # list is left out
    assert msgspec.json.encode(Pod()) == b'{"metadata":{}}'
    assert msgspec.json.encode(PodList()) == b'{"metadata":{}}'
    assert msgspec.json.encode(Pod(spec=PodSpec())) == b'{"metadata":{},"spec":{}}'
    assert msgspec.json.encode(PodSpec()) == b"{}"
    assert msgspec.json.encode(ManagedFieldsEntry()) == b"{}"
    assert msgspec.json.encode(Pod(metadata=ObjectMeta(name="a"))) == b'{"metadata":{"name":"a"}}'
    assert repr(Pod(metadata=ObjectMeta(name="a"))) == "Pod(metadata=ObjectMeta(name='a'))"


def test_no_kind_or_api_version_defaults() -> None:
    pod = Pod()
    assert pod.kind is None and pod.api_version is None
    job = Job()
    assert job.kind is None and job.api_version is None


def test_unknown_fields_are_ignored() -> None:
    data = b'{"kind":"Pod","futureField":{"a":[1,2]},"metadata":{"name":"a","newThing":1}}'
    pod = msgspec.json.decode(data, type=Pod)
    assert pod == Pod(kind="Pod", metadata=ObjectMeta(name="a"))


# What kube-apiserver 1.20 sends as a watch BOOKMARK of pods.
BOOKMARK_LINE = (
    b'{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":'
    b'{"resourceVersion":"12345","creationTimestamp":null},"spec":{"containers":null},'
    b'"status":{}}}'
)


class PodEvent(msgspec.Struct):
    type: str
    object: Pod


def test_bookmark_decodes() -> None:
    event = msgspec.json.decode(BOOKMARK_LINE, type=PodEvent)
    assert event.type == "BOOKMARK"
    pod = event.object
    assert pod.metadata.resource_version == "12345"
    assert pod.metadata.creation_timestamp is None
    assert pod.spec is not None and pod.spec.containers is None
    generic = msgspec.json.decode(BOOKMARK_LINE, type=WatchEvent)
    assert generic.object is not None
    assert generic.object["metadata"]["resourceVersion"] == "12345"


def test_null_and_missing_metadata_and_items_decode_as_defaults() -> None:
    assert msgspec.json.decode(b'{"metadata":null}', type=Pod).metadata == ObjectMeta()
    assert msgspec.json.decode(b"{}", type=Pod).metadata == ObjectMeta()
    empty = msgspec.json.decode(b'{"kind":"PodList","items":null,"metadata":null}', type=PodList)
    assert empty.items == [] and empty.metadata == ListMeta()
    missing = msgspec.json.Decoder(PodList).decode(b'{"kind":"PodList"}')
    assert missing.items == [] and missing.metadata == ListMeta()
    listed = msgspec.json.decode(b'{"items":[{"metadata":null},{}]}', type=PodList)
    assert [pod.metadata for pod in listed.items] == [ObjectMeta(), ObjectMeta()]
    # built without metadata, a Pod still has one, and each its own
    first, second = Pod(), Pod(spec=PodSpec())
    assert first.metadata == ObjectMeta() and first.metadata is not second.metadata
    first.metadata.name = "a"
    assert second.metadata.name is None
    # None given by hand (a type error) is normalised the same way
    assert PodList(items=None).items == []  # type: ignore[arg-type]


def test_never_none_fields_and_the_docs_type_check_under_mypy_strict(tmp_path: Path) -> None:
    from mypy import api

    user = tmp_path / "user.py"
    user.write_text(
        "from kubeasync.models import PodList\n"
        "from kubeasync.models.apps_v1 import DeploymentList\n\n\n"
        "def names(pods: PodList, deployments: DeploymentList) -> list[str]:\n"
        "    out = [pod.metadata.name or '' for pod in pods.items]\n"
        "    out += [d.metadata.name or '' for d in deployments.items]\n"
        "    token: str | None = pods.metadata.continue_\n"
        "    return [*out, token or '']\n",
        encoding="utf-8",
    )
    scripts = [user]
    docs = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    for index, block in enumerate(re.findall(r"```python\n(.*?)```", docs, re.DOTALL)):
        scripts.append(tmp_path / f"models_md_{index}.py")
        scripts[-1].write_text(block, encoding="utf-8")
    assert len(scripts) >= 3
    stdout, stderr, status = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), *map(str, scripts)]
    )
    assert status == 0, stdout + stderr


def test_fields_v1_null_and_missing() -> None:
    entry = msgspec.json.decode(b'{"manager":"m","fieldsV1":null}', type=ManagedFieldsEntry)
    assert bytes(entry.fields_v1) == b"null"
    assert msgspec.json.encode(entry) == b'{"fieldsV1":null,"manager":"m"}'
    entry = msgspec.json.decode(b'{"manager":"m"}', type=ManagedFieldsEntry)
    assert entry.fields_v1 == msgspec.Raw()
    built = ManagedFieldsEntry(fields_v1=msgspec.Raw(b'{"f:a":{}}'))
    assert msgspec.json.encode(built) == b'{"fieldsV1":{"f:a":{}}}'


# --------------------------------------------------------------------------------------------
# time helpers


def test_parse_time() -> None:
    assert parse_time("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    assert parse_time("2024-05-01T10:00:00.123456Z") == datetime(
        2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc
    )
    assert parse_time("2024-05-01T10:00:00.5Z") == datetime(
        2024, 5, 1, 10, 0, 0, 500000, tzinfo=timezone.utc
    )
    assert parse_time("2024-05-01T10:00:00.123456789Z") == datetime(
        2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc
    )
    offset = parse_time("2024-05-01T12:00:00+02:00")
    assert offset is not None
    assert offset.utcoffset() == timedelta(hours=2)
    assert offset == datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    assert parse_time(None) is None
    for bad in ("", "2024-05-01", "2024-05-01T10:00:00", "yesterday", "2024-05-01T10:00:00Zjunk"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_format_time() -> None:
    dt = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(dt) == "2024-05-01T10:00:00Z"
    assert format_time(dt, micro=True) == "2024-05-01T10:00:00.123456Z"
    assert parse_time(format_time(dt, micro=True)) == dt


def test_doctests() -> None:
    for module in (models, _base):
        result = doctest.testmod(module, raise_on_error=False)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0, module.__name__


# --------------------------------------------------------------------------------------------
# the generator


def test_generation_is_deterministic(tmp_path: Path) -> None:
    out = tmp_path / "models"
    assert gen_models.main(["--out", str(out)]) == 0
    generated = sorted(p.name for p in out.iterdir())
    committed = gen_models.generated_files(MODELS_DIR)
    assert generated == committed
    assert "__init__.py" in committed and "core_v1.py" in committed
    assert "_base.py" not in committed
    for name in generated:
        assert (out / name).read_bytes() == (MODELS_DIR / name).read_bytes(), name
    # a second run gives the same bytes and --check agrees
    assert gen_models.generate(gen_models.DEFAULT_DEFINITIONS) == gen_models.generate(
        gen_models.DEFAULT_DEFINITIONS
    )
    assert gen_models.main(["--out", str(out), "--check"]) == 0
    (out / "core_v1.py").write_text("# stale\n")
    assert gen_models.main(["--out", str(out), "--check"]) == 1
    assert gen_models.main(["--out", str(out)]) == 0
    # a generated module that the definitions no longer give is stale too, and is removed
    (out / "old_v1.py").write_text(gen_models.HEADER + "an older input.\n")
    assert gen_models.main(["--out", str(out), "--check"]) == 1
    assert gen_models.main(["--out", str(out)]) == 0
    assert not (out / "old_v1.py").exists()
    assert gen_models.main(["--out", str(out), "--check"]) == 0


def test_check_of_the_committed_models() -> None:
    assert gen_models.main(["--check"]) == 0


def test_generated_files_have_header() -> None:
    files = gen_models.generated_files(MODELS_DIR)
    assert len(files) > 30
    for name in files:
        head = (MODELS_DIR / name).read_text(encoding="utf-8").splitlines()[:2]
        assert head[0].startswith("# Generated by tools/gen_models.py from tools/openapi/"), name
        assert "Do not edit by hand" in head[1], name


def test_module_layout() -> None:
    assert models.ObjectMeta.__module__ == "kubeasync.models.meta_v1"
    assert models.Pod.__module__ == "kubeasync.models.core_v1"
    assert models.Job.__module__ == "kubeasync.models.batch_v1"
    assert models.Info.__module__ == "kubeasync.models.version"
    modules = {path.stem for path in MODELS_DIR.glob("*.py")}
    for name in (
        "core_v1", "meta_v1", "apps_v1", "batch_v1", "rbac_authorization_v1",
        "apiextensions_v1", "apiregistration_v1", "autoscaling_v1", "autoscaling_v2",
        "resource_v1", "flowcontrol_apiserver_v1", "networking_v1", "events_v1",
        "coordination_v1", "policy_v1", "storage_v1", "admissionregistration_v1",
        "certificates_v1", "discovery_v1", "node_v1", "scheduling_v1", "version",
    ):
        assert name in modules, name
    assert not any(name.startswith("_generated_") for name in modules)
    meta_source = (MODELS_DIR / "meta_v1.py").read_text(encoding="utf-8")
    assert "from .core_v1" not in meta_source
    core_source = (MODELS_DIR / "core_v1.py").read_text(encoding="utf-8")
    assert "from .batch_v1" not in core_source
    apps_source = (MODELS_DIR / "apps_v1.py").read_text(encoding="utf-8")
    assert "from .core_v1 import PersistentVolumeClaim, PodTemplateSpec\n" in apps_source


def test_group_version_modules() -> None:
    from kubeasync.models.apiextensions_v1 import CustomResourceDefinition, JSONSchemaProps
    from kubeasync.models.apps_v1 import Deployment
    from kubeasync.models.events_v1 import Event as EventsEvent
    from kubeasync.models.rbac_authorization_v1 import ClusterRole

    assert Deployment.__module__ == "kubeasync.models.apps_v1"
    assert ClusterRole.__module__ == "kubeasync.models.rbac_authorization_v1"
    assert CustomResourceDefinition.__module__ == "kubeasync.models.apiextensions_v1"
    # two groups' Event: each plain in its module; the flat name is core's
    assert EventsEvent is not models.Event
    assert models.Event.__module__ == "kubeasync.models.core_v1"
    # the submodules are attributes of the package too, imported on first use
    assert models.apps_v1.Deployment is Deployment
    assert "apps_v1" in dir(models) and "Pod" in dir(models)
    with pytest.raises(AttributeError, match="no attribute 'Deployment'"):
        _ = models.Deployment  # not in the flat namespace of 0.1: import it from apps_v1
    # $ref and $schema are attributes of JSONSchemaProps
    props = msgspec.json.decode(b'{"$ref":"#/x","type":"object"}', type=JSONSchemaProps)
    assert props.ref == "#/x" and props.type == "object"


def test_flat_namespace_keeps_every_name_of_0_1() -> None:
    # the names kubeasync.models exported in 0.1, each still the class of the same definition
    for name, module in FLAT_0_1.items():
        obj = getattr(models, name)
        assert obj is getattr(importlib.import_module(f"kubeasync.models.{module}"), name), name
        assert name in models.__all__


def test_builtin_type_names_as_attributes() -> None:
    # DeviceAttribute has fields named int and bool: their types are written builtins.int
    from kubeasync.models.resource_v1 import DeviceAttribute

    data = b'{"int":3,"bool":true,"version":"1.0.0"}'
    attribute = msgspec.json.decode(data, type=DeviceAttribute)
    assert attribute.int == 3 and attribute.bool is True and attribute.version == "1.0.0"
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"int":"three"}', type=DeviceAttribute)


def test_any_json_definitions() -> None:
    from kubeasync.models import apiextensions_v1

    assert apiextensions_v1.JSON is Any
    props = msgspec.json.decode(
        b'{"default":[1,"a"],"enum":[1,{"a":null}],"additionalProperties":false}',
        type=apiextensions_v1.JSONSchemaProps,
    )
    assert props.default == [1, "a"] and props.enum == [1, {"a": None}]
    assert props.additional_properties is False


def test_reserved_names_get_their_module_as_prefix() -> None:
    modules = {"io.k8s.api.apps.v1": "apps_v1", "io.k8s.apimachinery.pkg.apis.meta.v1": "meta_v1"}
    names = gen_models.assign_class_names(
        [
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
            "io.k8s.api.apps.v1.Status",
            "io.k8s.api.apps.v1.Time",
        ],
        modules,
    )
    assert names == {
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status": "Status",
        "io.k8s.api.apps.v1.Status": "Status",  # plain in its own module
        "io.k8s.api.apps.v1.Time": "AppsV1Time",  # "Time" is the _base alias
    }


def test_module_names_follow_the_api_group() -> None:
    defs = gen_models.load_definitions(gen_models.DEFAULT_DEFINITIONS)
    names = gen_models.module_names(defs)
    assert names["io.k8s.api.core.v1"] == "core_v1"
    assert names["io.k8s.api.rbac.v1"] == "rbac_authorization_v1"
    assert names["io.k8s.api.flowcontrol.v1"] == "flowcontrol_apiserver_v1"
    assert names["io.k8s.api.apiserverinternal.v1alpha1"] == "internal_apiserver_v1alpha1"
    assert names["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"] == "apiextensions_v1"
    assert names["io.k8s.kube-aggregator.pkg.apis.apiregistration.v1"] == "apiregistration_v1"
    assert names["io.k8s.apimachinery.pkg.apis.meta.v1"] == "meta_v1"
    assert names["io.k8s.apimachinery.pkg.version"] == "version"


def _thing(group: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        GVK_KEY: [{"group": group, "version": "v1", "kind": "Thing"}],
    }


def test_clashing_imports_are_aliased() -> None:
    defs = {
        "io.k8s.api.apps.v1.Thing": _thing(
            "apps", {"ref": {"$ref": "#/$defs/io.k8s.api.core.v1.Thing"}}
        ),
        "io.k8s.api.core.v1.Thing": _thing("", {"a": {"type": "string"}}),
    }
    apps = gen_models.build_modules(defs, flat_modules=("core_v1",)).modules["apps_v1"]
    assert apps.imports == {"core_v1": {"Thing": "CoreV1Thing"}}
    source = gen_models.render_module(apps, "test")
    assert "from .core_v1 import Thing as CoreV1Thing\n" in source
    assert "ref: CoreV1Thing | None = None" in source
    # the flat namespace holds one class per name, and its modules must exist
    with pytest.raises(gen_models.GeneratorError, match="flat namespace has two Thing"):
        gen_models.build_modules(defs, flat_modules=("apps_v1",))
    with pytest.raises(gen_models.GeneratorError, match="flat namespace's modules"):
        gen_models.build_modules(defs, flat_modules=("batch_v1",))


def test_generator_fails_loudly() -> None:
    defs = json.loads(gen_models.DEFAULT_DEFINITIONS.read_text(encoding="utf-8"))["$defs"]
    changed = copy.deepcopy(defs)
    changed["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] = {"type": "integer"}
    with pytest.raises(gen_models.GeneratorError, match="changed shape"):
        gen_models.build_modules(changed)
    changed = copy.deepcopy(defs)
    props = changed["io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"]["properties"]
    props["continue_"] = {"type": "string"}
    with pytest.raises(gen_models.GeneratorError, match="both map to"):
        gen_models.build_modules(changed)
    changed = copy.deepcopy(defs)
    changed["io.k8s.api.core.v1.PodSpec"]["properties"]["x"] = {"$ref": "#/$defs/io.k8s.Nope"}
    with pytest.raises(gen_models.GeneratorError, match="not defined"):
        gen_models.build_modules(changed)


# --------------------------------------------------------------------------------------------
# lazy imports


# Runs code with the kubeasync package's own __init__ (the client, which imports the models
# of its six seed kinds) skipped, so that what the models import themselves is what is seen.
_MODELS_ONLY = (
    "import importlib.util, sys, types\n"
    "spec = importlib.util.find_spec('kubeasync')\n"
    "package = types.ModuleType('kubeasync')\n"
    "package.__path__ = list(spec.submodule_search_locations)\n"
    "sys.modules['kubeasync'] = package\n"
)


def _imported_models(code: str, *, models_only: bool = True) -> set[str]:
    """The kubeasync.models modules a fresh interpreter has imported after running code."""
    script = (
        (_MODELS_ONLY if models_only else "")
        + code
        + "\nimport sys\n"
        + "print(' '.join(sorted(m for m in sys.modules if m.startswith('kubeasync.models'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return {m.removeprefix("kubeasync.models").lstrip(".") for m in done.stdout.split()}


def test_importing_one_group_version_imports_only_what_it_refers_to() -> None:
    assert _imported_models("import kubeasync.models") == {"", "_base"}
    assert _imported_models("from kubeasync.models.apps_v1 import Deployment") == {
        "", "_base", "apps_v1", "core_v1", "meta_v1",
    }
    assert _imported_models("import kubeasync.models.rbac_authorization_v1") == {
        "", "_base", "rbac_authorization_v1", "meta_v1",
    }
    assert _imported_models("from kubeasync.models import ObjectMeta") == {"", "_base", "meta_v1"}
    assert _imported_models("from kubeasync.models import Pod") == {
        "", "_base", "core_v1", "meta_v1",
    }
    # and through the real package: the client (its catalogue of every kind included)
    # imports only what its own code uses; a group-version adds what it refers to
    client = _imported_models("import kubeasync, kubeasync.kinds\nkubeasync.Client",
                              models_only=False)
    assert client == {"", "_base", "meta_v1", "version"}  # Status, Info
    with_apps = _imported_models(
        "import kubeasync\nkubeasync.Client\nfrom kubeasync.models.apps_v1 import Deployment",
        models_only=False,
    )
    assert with_apps == client | {"apps_v1", "core_v1"}


# --------------------------------------------------------------------------------------------
# round trips of kinds of several groups


GROUP_DOCUMENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("apps_v1", "Deployment", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "generation": 3,
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {
            "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}},
        },
        "status": {"replicas": 3, "readyReplicas": 2, "observedGeneration": 3,
                   "conditions": [{"type": "Available", "status": "True",
                                   "lastUpdateTime": "2024-05-01T10:00:00Z",
                                   "reason": "MinimumReplicasAvailable"}]},
    }),
    ("apps_v1", "StatefulSet", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"spec": {"containers": [{"name": "db", "image": "postgres"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}]},
    }),
    ("batch_v1", "CronJob", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"spec": {"backoffLimit": 2, "template": {"spec": {
                     "restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "busybox", "args": ["true"]}]}}}}},
        "status": {"lastScheduleTime": "2024-05-01T03:00:00Z"},
    }),
    ("core_v1", "Secret", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "type": "Opaque", "data": {"password": "aHVudGVyMg=="}, "immutable": True,
    }),
    ("core_v1", "Node", {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "vk-1"},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastHeartbeatTime": "2024-05-01T10:00:00Z"}]},
    }),
    ("coordination_v1", "Lease", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "lock", "namespace": "ns"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 2,
                 "acquireTime": "2024-05-01T10:00:00.123456Z",
                 "renewTime": "2024-05-01T10:00:10.654321Z"},
    }),
    ("rbac_authorization_v1", "ClusterRoleBinding", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "ns"}],
    }),
    ("networking_v1", "Ingress", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "example.com", "http": {
            "paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "web", "port": {"number": 80}}}}]}}]},
    }),
    ("autoscaling_v2", "HorizontalPodAutoscaler", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "web"},
                 "minReplicas": 1, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization",
                                               "averageUtilization": 80}}}]},
    }),
    ("policy_v1", "PodDisruptionBudget", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["web"]}]}},
    }),
    ("discovery_v1", "EndpointSlice", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }),
    ("events_v1", "Event", {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2024-05-01T10:00:00.000001Z", "reason": "Started", "action": "Start",
        "reportingController": "kubelet", "reportingInstance": "vk-1", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "web-0", "namespace": "shop"},
    }),
    ("apiextensions_v1", "CustomResourceDefinition", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                           "shortNames": ["wd"]},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}, "scale": {
                                   "specReplicasPath": ".spec.replicas",
                                   "statusReplicasPath": ".status.replicas"}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True,
                                   "properties": {"spec": {
                                       "type": "object", "required": ["size"],
                                       "properties": {
                                           "size": {"type": "integer", "default": 1,
                                                    "minimum": 0},
                                           "mode": {"type": "string",
                                                    "enum": ["a", "b"]},
                                           "tags": {"type": "array",
                                                    "items": {"type": "string"}}}}}}}}]},
        "status": {"acceptedNames": {"plural": "widgets", "kind": "Widget"},
                   "conditions": [{"type": "Established", "status": "True"}]},
    }),
]


@pytest.mark.parametrize(
    ("module", "kind", "document"), GROUP_DOCUMENTS, ids=[f"{m}.{k}" for m, k, _ in GROUP_DOCUMENTS]
)
def test_round_trips_of_kinds_of_several_groups(
    module: str, kind: str, document: dict[str, Any]
) -> None:
    _walk_no_nulls(document)
    cls = getattr(importlib.import_module(f"kubeasync.models.{module}"), kind)
    data = json.dumps(document).encode()
    obj = msgspec.json.decode(data, type=cls)
    assert json.loads(msgspec.json.encode(obj)) == document
    assert obj.metadata.name == document["metadata"]["name"]
    listed = getattr(importlib.import_module(f"kubeasync.models.{module}"), kind + "List")
    items = msgspec.json.decode(b'{"items":[' + data + b'],"metadata":{"continue":"t"}}', type=listed)
    assert items.items == [obj] and items.metadata.continue_ == "t"


def test_values_of_other_groups_decode_as_typed_values() -> None:
    from kubeasync.models.apiextensions_v1 import CustomResourceDefinition
    from kubeasync.models.apps_v1 import Deployment

    by_name = {kind: document for _, kind, document in GROUP_DOCUMENTS}
    deployment = msgspec.json.decode(json.dumps(by_name["Deployment"]), type=Deployment)
    assert deployment.spec is not None and deployment.spec.strategy is not None
    rolling = deployment.spec.strategy.rolling_update
    assert rolling is not None and rolling.max_surge == "25%" and rolling.max_unavailable == 1
    assert deployment.spec.template is not None and deployment.spec.template.spec is not None
    assert isinstance(deployment.spec.template.spec, PodSpec)
    crd = msgspec.json.decode(json.dumps(by_name["CustomResourceDefinition"]),
                              type=CustomResourceDefinition)
    assert crd.spec is not None and crd.spec.versions is not None
    schema = crd.spec.versions[0].schema
    assert schema is not None and schema.open_apiv3_schema is not None
    root = schema.open_apiv3_schema
    assert root.x_kubernetes_preserve_unknown_fields is True
    assert root.properties is not None
    spec = root.properties["spec"]
    assert spec.required == ["size"] and spec.properties is not None
    assert spec.properties["size"].default == 1 and spec.properties["size"].minimum == 0
    assert spec.properties["mode"].enum == ["a", "b"]
