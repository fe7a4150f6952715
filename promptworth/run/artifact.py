"""A fitted method as a directory that describes itself and loads without running code.

    MODEL/
      manifest.json          format, and the sha256 of every other file
      artifact.json          method, params, task (labels, verbalisers, templates, version),
                             prompt options, backbones with revisions, the method's metadata
      state.safetensors      the method's trained tensors and arrays (may hold none)
      tokenizers/KIND/       the tokenizer of each backbone the method reads (JSON and text)

Reading checks the manifest first: a file whose digest differs, a file the manifest does not
list, a link, or a file of a format whose loader can run code (pickle and its kin) is refused
with one line naming it, before anything is parsed. Only JSON and safetensors are ever read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptworth.errors import PromptworthError
from promptworth.methods.base import SavedState

FORMAT = "promptworth-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DESCRIPTION = "artifact.json"
STATE = "state.safetensors"
TOKENIZERS = "tokenizers"
# Formats whose usual loaders can execute code (pickle inside): never part of an artifact.
CODE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".npy", ".npz")


class ArtifactError(PromptworthError):
    """An artifact directory that is missing, incomplete, changed or unsafe to load."""


@dataclass
class Artifact:
    path: Path
    description: dict[str, Any]  # artifact.json
    state: SavedState

    def tokenizer_dir(self, kind: str) -> Path:
        return self.path / TOKENIZERS / kind


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_artifact(
    out: Path, description: dict[str, Any], state: SavedState, tokenizers: dict[str, Any]
) -> None:
    """Write the artifact to `out` (absent or empty), whole or not at all: it is written beside
    `out` and moved there once complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        write_files(partial, description, state, tokenizers)
        readable_as_umask_allows(partial)
        if out.exists():
            out.rmdir()  # empty: checked before the fit
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def readable_as_umask_allows(directory: Path) -> None:
    """Give `directory` and its files the permissions a plain mkdir and write would have
    (temporary directories and some writers make them private to their owner)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [directory, *directory.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def write_files(
    out: Path, description: dict[str, Any], state: SavedState, tokenizers: dict[str, Any]
) -> None:
    """State, description, each backbone's tokenizer (`tokenizers`: kind -> tokenizer), then
    the manifest of digests, into the directory `out`."""
    import torch
    from safetensors.torch import save_file

    arrays = sorted(name for name, value in state.tensors.items() if isinstance(value, np.ndarray))
    tensors = {
        name: (torch.from_numpy(np.ascontiguousarray(value)) if name in arrays else value)
        .detach()
        .cpu()
        .contiguous()
        for name, value in state.tensors.items()
    }
    save_file(tensors, out / STATE, metadata={"format": "pt"})
    described = {
        **description,
        "state": {"meta": state.meta, "arrays": arrays, "backbones": state.backbones},
    }
    (out / DESCRIPTION).write_text(json.dumps(described, indent=2, ensure_ascii=False) + "\n")
    for kind, tokenizer in tokenizers.items():
        tokenizer.save_pretrained(out / TOKENIZERS / kind)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    unsafe = [p for p in files if p.suffix.lower() in CODE_SUFFIXES]
    if unsafe:  # a tokenizer that saves a pickle-capable file: no artifact rather than one
        raise ArtifactError(f"{unsafe[0]}: a format that can carry code; not written")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "files": {p.relative_to(out).as_posix(): sha256(p) for p in files},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_artifact(path: Path) -> Artifact:
    """The verified artifact at `path` (see the module doc for what is refused)."""
    from safetensors.torch import load_file

    verify(path)
    described = json.loads((path / DESCRIPTION).read_text())
    saved = described.pop("state")
    tensors: dict[str, Any] = load_file(path / STATE)
    for name in saved["arrays"]:
        tensors[name] = tensors[name].numpy()
    return Artifact(path, described, SavedState(tensors, saved["meta"], saved["backbones"]))


def verify(path: Path) -> dict:
    """The manifest of `path` once every file checks against it; else one ArtifactError."""
    manifest_path = path / MANIFEST
    if not path.is_dir() or not manifest_path.is_file():
        raise ArtifactError(
            f"{path}: not a promptworth artifact (no {MANIFEST}); make one with `promptworth fit`"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = dict(manifest["files"])
        known = manifest["format"] == FORMAT
    except (ValueError, KeyError, TypeError) as error:
        raise ArtifactError(f"{manifest_path}: not a readable manifest ({error})") from None
    if not known or manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format {manifest.get('format')!r} version "
            f"{manifest.get('format_version')!r}; this promptworth reads {FORMAT} {FORMAT_VERSION}"
        )
    for entry in sorted(path.rglob("*")):
        name = entry.relative_to(path).as_posix()
        if entry.is_symlink():
            raise ArtifactError(f"{entry}: a link; an artifact holds only its own files")
        if entry.is_dir() or name == MANIFEST:
            continue
        if entry.suffix.lower() in CODE_SUFFIXES:
            raise ArtifactError(
                f"{entry}: a {entry.suffix} file can carry code; artifacts hold only "
                "safetensors and JSON, so this one is not loaded"
            )
        if name not in listed:
            raise ArtifactError(f"{entry}: not in the manifest; the artifact was changed")
    for name, digest in listed.items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ArtifactError(f"{manifest_path}: lists {name!r}, outside the artifact")
        entry = path / name
        if not entry.is_file():
            raise ArtifactError(f"{entry}: listed in the manifest but missing")
        if sha256(entry) != digest:
            raise ArtifactError(
                f"{entry}: its sha256 does not match the manifest (changed or damaged); "
                "fit the model again"
            )
    for required in (DESCRIPTION, STATE):
        if required not in listed:
            raise ArtifactError(f"{path / required}: missing from the artifact")
    return manifest
