"""What every step of `make validate` reports: a rule broken somewhere, in words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    rule: str  # the check's name, e.g. values-key, image-pinned, kubeconform
    where: str  # a file, resource or value path
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: {self.message}"
