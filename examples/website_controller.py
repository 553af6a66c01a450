"""An operator: a ``Website`` custom resource becomes a Deployment and a Service it owns.

    python examples/website_controller.py                      # the kubeconfig's cluster
    python examples/website_controller.py --kubeconfig k.yaml --namespace web --workers 4
    python examples/website_controller.py --leader-elect       # several replicas, one active

    kubectl apply -f - <<EOF
    apiVersion: demo.kubeasync.io/v1
    kind: Website
    metadata: {name: blog}
    spec: {image: nginx:1.25, replicas: 2, port: 80}
    EOF

It installs the ``websites.demo.kubeasync.io`` CRD when the server does not serve it yet
(and waits until it is Established), then runs a :class:`kubeasync.Controller`:

- every Website gets a Deployment and a Service of the same name, written with server-side
  apply and owned by the Website (``ownerReferences`` with ``controller: true``): a change
  to either (someone scales the Deployment by hand, deletes the Service) brings the
  Website's reconcile back, and the garbage collector deletes them with it;
- the Website's ``status`` says what the Deployment has (``availableReplicas``, an
  ``Available`` condition) for the generation it has seen (``observedGeneration``);
- a finalizer (``demo.kubeasync.io/cleanup``) runs the cleanup when the Website is deleted:
  the Deployment and the Service go first, then the Website;
- Events (``events.k8s.io/v1`` where served, else core/v1) say what it did.

The reconcile is level-triggered: it reads the Website from the informer's cache and
applies the whole desired state every time; applying it again changes nothing.

Import it to run it elsewhere (its tests run it on the embedded and the real server):

    async with kubeasync.Client() as kube:
        await install_crd(kube)
        await WebsiteController(kube, workers=4).run()
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))  # this checkout's kubeasync when run from it

import kubeasync  # noqa: E402
from kubeasync import ObjectKey, PatchType, conditions  # noqa: E402
from kubeasync.kinds import APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITIONS, APPS_V1_DEPLOYMENTS  # noqa: E402
from kubeasync.models.apps_v1 import Deployment  # noqa: E402
from kubeasync.models.meta_v1 import ListMeta, ObjectMeta  # noqa: E402

log = logging.getLogger("website_controller")

GROUP = "demo.kubeasync.io"
MANAGER = "website-controller"
FINALIZER = f"{GROUP}/cleanup"
LABEL = f"{GROUP}/website"


# --------------------------------------------------------------------------- the resource


class WebsiteSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    image: str = "nginx:1.25"
    replicas: int = 1
    port: int = 80


class Condition(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None


class WebsiteStatus(msgspec.Struct, kw_only=True):
    # Every field is written (no omit_defaults): a merge patch of the status must also
    # reset what went back to its default (availableReplicas 0).
    observed_generation: int | None = msgspec.field(default=None, name="observedGeneration")
    available_replicas: int = msgspec.field(default=0, name="availableReplicas")
    url: str | None = None
    conditions: list[Condition] = msgspec.field(default_factory=list)


class Website(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A Website (``spec`` is None only in a watch BOOKMARK)."""

    api_version: str = msgspec.field(default=f"{GROUP}/v1", name="apiVersion")
    kind: str = "Website"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: WebsiteSpec | None = None
    status: WebsiteStatus | None = None


class WebsiteList(msgspec.Struct, kw_only=True, omit_defaults=True):
    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: list[Website] = msgspec.field(default_factory=list)


WEBSITES: kubeasync.ResourceDescriptor[Website, WebsiteList] = kubeasync.ResourceDescriptor(
    group=GROUP, version="v1", kind="Website", plural="websites", model=Website,
    list_model=WebsiteList, subresources=("status",), short_names=("ws",),
)

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"websites.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "websites", "singular": "website", "kind": "Website",
                  "shortNames": ["ws"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
                {"name": "Available", "type": "integer",
                 "jsonPath": ".status.availableReplicas"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "image": {"type": "string", "default": "nginx:1.25"},
                        "replicas": {"type": "integer", "minimum": 0, "default": 1},
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                                 "default": 80}}},
                    "status": {"type": "object",
                               "x-kubernetes-preserve-unknown-fields": True},
                }}},
        }],
    },
}


async def install_crd(kube: kubeasync.Client, *, timeout: float = 60) -> bool:
    """Create the CRD unless it exists (or the server serves Websites some other way, as
    the embedded server can), and wait until it is Established. A CRD still being deleted
    (with all its Websites) is waited for first. Returns whether it was created."""
    crds = kube.resource(APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITIONS)
    name = CRD["metadata"]["name"]
    try:
        crd = await crds.get(name)
    except kubeasync.NotFound:
        crd = None
    if crd is not None and crd.metadata.deletion_timestamp:
        await crds.wait_for(name, conditions.deleted, timeout=timeout)
        kube.discovery.forget()
        crd = None
    if crd is None and "v1" in await kube.discovery.versions(GROUP):
        return False
    created = False
    if crd is None:
        try:
            await crds.create(CRD)
            created = True
        except kubeasync.AlreadyExists:
            pass
        except kubeasync.NotFound:
            raise SystemExit(
                "this server serves neither Websites nor CustomResourceDefinitions"
                " (apiextensions.k8s.io/v1): it cannot run this example") from None
    await crds.wait_for(name, conditions.crd_established, timeout=timeout)
    kube.discovery.forget()
    return created


# --------------------------------------------------------------------------- the controller


def labels(site: Website) -> dict[str, str]:
    return {LABEL: site.metadata.name or ""}


def owner(site: Website) -> dict[str, Any]:
    return {"apiVersion": site.api_version, "kind": "Website", "name": site.metadata.name,
            "uid": site.metadata.uid, "controller": True, "blockOwnerDeletion": True}


def desired_deployment(site: Website, spec: WebsiteSpec) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": site.metadata.name, "labels": labels(site),
                     "ownerReferences": [owner(site)]},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": labels(site)},
            "template": {
                "metadata": {"labels": labels(site)},
                # Server-side apply merges lists by their keys: give every key field
                # (a port's protocol too, which 1.20 does not default here).
                "spec": {"containers": [{"name": "web", "image": spec.image,
                                         "ports": [{"containerPort": spec.port,
                                                    "protocol": "TCP"}]}]},
            },
        },
    }


def desired_service(site: Website, spec: WebsiteSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": site.metadata.name, "labels": labels(site),
                     "ownerReferences": [owner(site)]},
        "spec": {"selector": labels(site),
                 "ports": [{"name": "http", "port": spec.port, "targetPort": spec.port,
                            "protocol": "TCP"}]},
    }


def desired_status(site: Website, deployment: Deployment, spec: WebsiteSpec) -> WebsiteStatus:
    available = (deployment.status.available_replicas or 0) if deployment.status else 0
    ready = available >= spec.replicas
    return WebsiteStatus(
        observed_generation=site.metadata.generation,
        available_replicas=available,
        url=f"http://{site.metadata.name}.{site.metadata.namespace}.svc:{spec.port}",
        conditions=[Condition(
            type="Available", status="True" if ready else "False",
            reason="MinimumReplicasAvailable" if ready else "ReplicasUnavailable",
            message=f"{available}/{spec.replicas} replicas available")],
    )


class WebsiteController:
    """Reconciles Websites (see the module docstring).

    Args:
        kube: the client.
        namespace: one namespace, or ``None`` for all of them.
        workers: Websites reconciled at once.
        leader_election: run only while leading (several replicas, one active).
    """

    def __init__(self, kube: kubeasync.Client, *, namespace: str | None = None,
                 workers: int = 4,
                 leader_election: kubeasync.LeaderElection | None = None) -> None:
        self.kube = kube
        websites = kube.resource(WEBSITES)
        # The class of an API has its descriptor's capabilities; this tells mypy so.
        assert isinstance(websites, kubeasync.StatusApi), "WEBSITES has a status subresource"
        self.websites: kubeasync.StatusApi[Website, WebsiteList] = websites
        self.deployments = kube.resource(APPS_V1_DEPLOYMENTS)
        self.services = kube.services
        self.finalizer = kubeasync.Finalizer(self.websites, FINALIZER)
        self.events = kubeasync.EventRecorder(kube, f"{GROUP}/website-controller")
        self.controller = kubeasync.Controller(
            kube, WEBSITES, self.reconcile, namespace=namespace, workers=workers,
            leader_election=leader_election, name="websites",
            # status writes (ours) do not change the generation: no reconcile for them
            predicates=[kubeasync.generation_changed])
        self.controller.owns(APPS_V1_DEPLOYMENTS).owns(kubeasync.SERVICES)
        self.deployment_cache = self.controller.cache(APPS_V1_DEPLOYMENTS)

    async def run(self) -> None:
        """Reconcile until cancelled."""
        try:
            await self.controller.run()
        finally:
            await self.events.aclose()

    async def reconcile(self, key: ObjectKey) -> None:
        site = self.controller.get(key)
        if site is None:
            return  # deleted: its Deployment and Service go with it (ownerReferences)
        try:
            await self.finalizer.handle(site, apply=self.apply, cleanup=self.cleanup)
        except kubeasync.ApiError as exc:
            self.events.warning(site, "ReconcileFailed", str(exc)[:1000], action="Reconcile")
            raise  # retried with backoff

    async def apply(self, site: Website) -> None:
        namespace, name = site.metadata.namespace, site.metadata.name or ""
        spec = site.spec or WebsiteSpec()
        existed = self.deployment_cache.get(name, namespace=namespace) is not None
        deployment = await self.deployments.patch(
            name, desired_deployment(site, spec), namespace=namespace,
            patch_type=PatchType.APPLY, field_manager=MANAGER, force=True)
        await self.services.patch(
            name, desired_service(site, spec), namespace=namespace,
            patch_type=PatchType.APPLY, field_manager=MANAGER, force=True)
        if not existed:
            self.events.normal(site, "Created", f"created Deployment and Service {name}",
                               action="Create")
        status = desired_status(site, deployment, spec)
        if status != site.status:
            await self.websites.patch_status(
                name, {"status": msgspec.to_builtins(status)}, namespace=namespace)
            was_ready = site.status is not None and any(
                c.type == "Available" and c.status == "True" for c in site.status.conditions)
            if status.conditions[0].status == "True" and not was_ready:
                self.events.normal(site, "Available", status.conditions[0].message or "",
                                   action="Reconcile")

    async def cleanup(self, site: Website) -> None:
        namespace, name = site.metadata.namespace, site.metadata.name or ""
        self.events.normal(site, "Deleting", f"deleting Deployment and Service {name}",
                           action="Delete")
        for api in (self.deployments, self.services):
            with contextlib.suppress(kubeasync.NotFound):
                await api.delete(name, namespace=namespace, propagation_policy="Background")


# --------------------------------------------------------------------------- main


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", help="a kubeconfig (default: KUBECONFIG, ~/.kube/config,"
                                             " then the in-cluster service account)")
    parser.add_argument("--namespace", "-n", help="one namespace (default: all)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--leader-elect", action="store_true",
                        help="hold the Lease website-controller to run (HA replicas)")
    parser.add_argument("--lease-namespace", default=None,
                        help="the Lease's namespace (default: the client's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = (kubeasync.ClusterConfig.from_kubeconfig(args.kubeconfig)
              if args.kubeconfig else None)
    async with kubeasync.Client(config) as kube:
        if await install_crd(kube):
            log.info("installed the CRD websites.%s", GROUP)
        election = (kubeasync.LeaderElection(kube, "website-controller",
                                             namespace=args.lease_namespace)
                    if args.leader_elect else None)
        controller = WebsiteController(kube, namespace=args.namespace, workers=args.workers,
                                       leader_election=election)
        log.info("reconciling Websites in %s", args.namespace or "every namespace")
        await controller.run()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
