"""The zoo's folder (docs/ARCHITECTURE.md, "The zoo"): the one place that names what a zoo writes where.

It sits low (beside rundir) because `features.find_features`, below the zoo, looks for the feature network
a zoo keeps beside its runs; the zoo package, the command line and the feature network all ask it."""

from __future__ import annotations

from pathlib import Path

from .fileio import check_length


class ZooDir:
    """OUT of `genmodels zoo`: OUT/<entry name> one run directory per entry, OUT/features the feature network
    its sample-quality metrics use, OUT/report.html the comparison of the runs."""

    DEFAULT = Path("runs") / "zoo"  # the command's --out
    FEATURES = "features"
    REPORT = "report.html"

    def __init__(self, root: str | Path) -> None:
        check_length(root, "The zoo folder")  # a name the file system cannot hold: one sentence, here
        self.root = Path(root)

    @classmethod
    def of_run(cls, run_dir: str | Path) -> ZooDir:
        """The zoo a run directory would belong to: its parent folder."""
        return cls(Path(run_dir).parent)

    def run(self, name: str) -> Path:
        return self.root / name

    @property
    def features(self) -> Path:
        return self.root / self.FEATURES

    @property
    def report(self) -> Path:
        return self.root / self.REPORT
