"""`genmodels train NAME --help` gives, beside each training default, the one a 2-D toy source gets instead
(Family.toy_train_defaults), so the help never shows a default that a toy run does not get."""

import re

import pytest

from conftest import cli
from genmodels.flags import family_flags, help_default
from genmodels.models import FAMILIES

TOY_NOTE = "on a 2-D toy --data"


def help_text(capsys, family: str) -> str:
    with pytest.raises(SystemExit):
        cli("train", family, "--help")
    # argparse wraps lines, also after a hyphen ("2-" / "D"): one line, hyphens joined again
    return re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))


@pytest.mark.parametrize("family", [name for name, fam in FAMILIES.items() if fam.toy_train_defaults])
def test_the_help_gives_the_toy_training_defaults_beside_the_others(capsys, family):
    text = help_text(capsys, family)
    toy = FAMILIES[family].toy_train_defaults
    flags = {f.key: f for f in family_flags(family) if f.section == "train"}
    for key, value in toy.items():
        flag, default = flags[key].flag, help_default(FAMILIES[family].train_defaults.get(key, None))
        at = re.search(rf"{re.escape(flag)} [A-Z_]+ ", text)  # the flag's own help: its first "(default ...)"
        said = at and re.compile(rf"\(default ([^;)]*)(?:; ([^;)]*) {TOY_NOTE})?\)").search(text, at.end())
        said = said if said and said[2] else None
        assert said, f"{flag}: no toy default in the help"
        assert said[2] == help_default(value), (flag, said[0])
        if key in FAMILIES[family].train_defaults:
            assert said[1] == default, (flag, said[0])
    assert text.count(TOY_NOTE) == len(toy)  # nothing else claims a toy default


def test_a_family_without_toy_defaults_says_nothing_of_toys(capsys):
    assert not FAMILIES["ae"].toy_train_defaults
    assert TOY_NOTE not in help_text(capsys, "ae")
