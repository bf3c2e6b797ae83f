"""The chart's pod specs turned into ``docker run`` arguments, so a container runs exactly as its pod would.

The chart is rendered with ``helm template`` (values pointing at the test SeaweedFS);
from the rendered objects come the container's command and args, its env (``secretKeyRef``
resolved from the rendered Secret), its ConfigMap files, its security context
(``runAsUser``, ``readOnlyRootFilesystem``, dropped capabilities) and its ``emptyDir``
mounts (a tmpfs).  KServe's storage-initializer env is derived from the Secret's
``serving.kserve.io/s3-*`` annotations the way KServe's credential builder does.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from spamops_dev.artifacts import ensure_helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "spamops"


@functools.cache
def helm_binary() -> str:
    """The pinned helm (built alone the first time; build.sh serialises every envtest build, even a lookup)."""
    return str(ensure_helm())


def render(values: dict, chart: Path = CHART) -> list[dict]:
    args = []
    for key, value in values.items():
        if isinstance(value, bool):
            args += ["--set", f"{key}={str(value).lower()}"]
        else:
            args += ["--set-string" if isinstance(value, str) else "--set", f"{key}={value}"]
    out = subprocess.run(
        [helm_binary(), "template", "spamops", str(chart), "--namespace", "spamops", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def chart_values(seaweed, **extra) -> dict:
    """Chart values that point trainer and storage initializer at the test server."""
    host = seaweed.endpoint.removeprefix("http://")
    return {
        "s3.endpoint": host,
        "s3.useHttps": False,
        "s3.verifySsl": False,
        "s3.accessKeyId": seaweed.access_key,
        "s3.secretAccessKey": seaweed.secret_key,
        # No cluster here: the trainer must not try to start a canary after promoting.
        "training.config.rollout.enabled": False,
        **extra,
    }


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return doc


@dataclass
class ContainerRun:
    """One container of a rendered pod, ready for ``docker run``."""

    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    user: str | None
    read_only: bool
    tmpfs: list[str] = field(default_factory=list)
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # mount path -> {file name: content}
    drop_all_caps: bool = False

    def docker_args(self, workdir: Path, extra_mounts: list[str] = ()) -> list[str]:
        out = ["--network=host", "--security-opt", "no-new-privileges"]
        if self.user:
            out += ["--user", self.user]
        if self.read_only:
            out.append("--read-only")
        if self.drop_all_caps:
            out += ["--cap-drop", "ALL"]
        for path in self.tmpfs:
            out += ["--tmpfs", f"{path}:uid=10001,gid=10001"]
        for index, (mount, files) in enumerate(self.files.items()):
            directory = workdir / f"volume-{index}"
            directory.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                (directory / name).write_text(content)
            out += ["--volume", f"{directory}:{mount}:ro"]
        for mount in extra_mounts:
            out += ["--volume", mount]
        for key, value in self.env.items():
            out += ["--env", f"{key}={value}"]
        if self.command:
            out += ["--entrypoint", self.command[0]]
        return out

    def argv(self) -> list[str]:
        """What follows the image name: the rest of the pod's command, then its args."""
        return [*self.command[1:], *self.args] if self.command else list(self.args)


def container_run(docs: list[dict], pod_spec: dict, container_name: str) -> ContainerRun:
    (container,) = [c for c in pod_spec["containers"] if c["name"] == container_name]
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in docs if d["kind"] == "Secret"}
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    pod_sc, sc = pod_spec.get("securityContext", {}), container.get("securityContext", {})
    uid, gid = sc.get("runAsUser", pod_sc.get("runAsUser")), sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    tmpfs, files = [], {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            tmpfs.append(mount["mountPath"])
        elif "configMap" in volume:
            files[mount["mountPath"]] = configmaps[volume["configMap"]["name"]]
        else:
            raise AssertionError(f"no docker equivalent for volume {volume}")
    return ContainerRun(
        image=container["image"],
        command=list(container.get("command", [])),
        args=[str(a) for a in container.get("args", [])],
        env=env,
        user=f"{uid}:{gid}" if uid is not None else None,
        read_only=bool(sc.get("readOnlyRootFilesystem")),
        tmpfs=tmpfs,
        files=files,
        drop_all_caps="ALL" in sc.get("capabilities", {}).get("drop", []),
    )


def trainer_run(docs: list[dict]) -> ContainerRun:
    job = find(docs, "CronJob")["spec"]["jobTemplate"]["spec"]
    return container_run(docs, job["template"]["spec"], "trainer")


def predictor_run(docs: list[dict]) -> ContainerRun:
    return container_run(docs, find(docs, "InferenceService")["spec"]["predictor"], "kserve-container")


def storage_initializer_env(docs: list[dict]) -> dict[str, str]:
    """The env KServe gives its storage-initializer container from the predictor ServiceAccount's Secret."""
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    notes, data = secret["metadata"]["annotations"], secret["stringData"]
    https = notes.get("serving.kserve.io/s3-usehttps", "1") != "0"
    endpoint = notes["serving.kserve.io/s3-endpoint"]
    return {
        "AWS_ACCESS_KEY_ID": data["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": data["AWS_SECRET_ACCESS_KEY"],
        "S3_ENDPOINT": endpoint,
        "AWS_ENDPOINT_URL": f"{'https' if https else 'http'}://{endpoint}",
        "S3_USE_HTTPS": "1" if https else "0",
        "S3_VERIFY_SSL": notes.get("serving.kserve.io/s3-verifyssl", "1"),
        "AWS_DEFAULT_REGION": notes.get("serving.kserve.io/s3-region", "us-east-1"),
    }
