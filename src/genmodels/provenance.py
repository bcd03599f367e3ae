"""Which data a run was trained on, and whether these are they (docs/ARCHITECTURE.md, "The run directory").

A run records its data in config.json: `data.source`, canonicalised here once (`canonical_source`: a path
made absolute, so the run outlives the working directory), the data's fingerprint (data.fingerprint) and
their shape. `training_data` gives a new or resumed run its data and the record to write; `run_data` gives
every later command the data the run names, and `check_data` refuses other data in one sentence.
"""

from __future__ import annotations

from pathlib import Path

from .config import DataConfig, shown
from .data import BUILT_IN, DataSplits, fingerprint, in_memory_name, load_data
from .dataset import Standardiser
from .errors import DataError
from .fileio import check_length
from .models import RunConfig
from .rundir import RunDir


def canonical_source(source: str) -> str:
    """A data source as a run records it: a path that exists, with ~ expanded, made absolute (runs outlive
    the working directory); a built-in name (digits, ...), a blank or a path that does not exist, as given."""
    if source in BUILT_IN or not source.strip():
        return source
    check_length(source, "--data")  # a name the file system cannot hold: one sentence, not a traceback
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def same_data(data: DataSplits, stored: str | None, known: str | None = None) -> bool:
    """Whether `data` are the data whose fingerprint is `stored` (known: data's fingerprint where it is already
    known, so the data are not hashed again)."""
    return stored is not None and (known or fingerprint(data)) == stored


def check_data(run: RunDir, cfg: RunConfig, data: DataSplits, fix: str) -> str:
    """data's fingerprint, after checking its shape and fingerprint against those cfg recorded (None: not
    recorded, as in a run from before fingerprints); one sentence ending in `fix` where they differ."""
    if cfg.shape is not None and tuple(data.shape) != tuple(cfg.shape):
        raise DataError(f"The data {shown(data.source)} hold images of shape {tuple(data.shape)}, but the run in "
                        f"{run} was trained on {tuple(cfg.shape)}; {fix}.")
    found = fingerprint(data)
    if cfg.data.fingerprint is not None and found != cfg.data.fingerprint:
        raise DataError(f"The data {shown(data.source)} (fingerprint {found[:12]}) are not the data the run in "
                        f"{run} was trained on ({shown(cfg.data.source)}, fingerprint "
                        f"{cfg.data.fingerprint[:12]}); {fix}.")
    return found


def run_data(run: RunDir, cfg: RunConfig, data: DataSplits | None = None, fix: str | None = None) -> DataSplits:
    """The run's data: `data` if given, else those cfg.data names, checked against its recorded shape and
    fingerprint (check_data; fix: the way out its sentence gives). Data given in memory under a name
    load_data cannot read are asked for in one sentence."""
    if data is None:
        source = cfg.data.source
        if in_memory_name(source):
            raise DataError(f"The run in {run} was trained on in-memory data named {shown(source)}, which "
                            "genmodels cannot load by that name; from Python pass the same data as data= "
                            f"(load_run or resume_run), or train the run again on a data source.")
        data = load_data(source, cfg.data.data_dir, max_data_gb=cfg.data.max_data_gb, toy_size=cfg.data.toy_size,
                         label_column=cfg.data.label_column)
        fix = fix or (f"point data.source in {run.config_file} back at the data it was trained on (or restore "
                      "those data), or train a new run")
    check_data(run, cfg, data, fix or "pass the data it was trained on")
    if cfg.data.standardiser is not None and data.kind == "vectors":  # the units the run's outputs are given in
        data.train.standardiser = data.test.standardiser = Standardiser.from_config(cfg.data.standardiser)
    return data


def training_data(config: RunConfig, run: RunDir, data: DataSplits | None = None, *,
                  resume: bool = False) -> tuple[DataSplits, DataConfig]:
    """The data a run trains on, and config.data as the run records them: the source (canonical_source, or
    the name of data given in memory) and the fingerprint. A resumed run's data are checked against the shape
    and fingerprint it recorded; a new run records its data, whatever a config copied from another run says."""
    source = config.data.source
    if resume:
        fix = "resume it with the data it was trained on, or train a new run into another folder"
        data = run_data(run, config, data, fix)
        found = fingerprint(data) if config.data.fingerprint is None else config.data.fingerprint
    else:
        if data is None:
            data = load_data(source, config.data.data_dir, max_data_gb=config.data.max_data_gb,
                             toy_size=config.data.toy_size, label_column=config.data.label_column)
            source = canonical_source(source)
        else:
            source = data.source
        found = fingerprint(data)
    return data, config.data.model_copy(update={"source": source, "fingerprint": found})
