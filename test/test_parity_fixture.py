"""The parity fixture's copy in the repository against its originals in ../shared (skips without).

Our weights recipe (test/parity_recipe.py) must give the very tensors of the fixture's own
recipe, key by key, and the copied files must be the originals.
"""

import json

import numpy as np
import pytest
from conftest import load_module, shared_path
from parity_recipe import SEEDS, synthetic_state_dict
from test_parity import FIXTURE


@pytest.fixture(scope="module")
def their_recipe():
    path = shared_path("fixtures", "parity", "weights_recipe.py")
    return load_module(path, "shared_weights_recipe")


@pytest.mark.parametrize("network", ["autoencoder", "sosnet"])
def test_our_recipe_gives_the_fixture_recipes_tensors(their_recipe, network):
    schema = json.loads(shared_path("spec", "checkpoint_schemas.json").read_text())[network]
    ours = synthetic_state_dict(schema, SEEDS[network])
    theirs = their_recipe.fill_state_dict(schema, SEEDS[network])
    assert list(ours) == list(theirs) == [key for key, _, _ in schema]
    for key, tensor in theirs.items():
        assert ours[key].dtype == tensor.dtype and ours[key].shape == tensor.shape, key
        assert ours[key].numpy().tobytes() == tensor.numpy().tobytes(), key  # bit for bit


def test_the_copied_schema_is_the_original():
    original = json.loads(shared_path("spec", "checkpoint_schemas.json").read_text())
    assert json.loads((FIXTURE / "checkpoint_schemas.json").read_text()) == original


def test_the_copied_inputs_and_expected_outputs_are_the_originals():
    shared = shared_path("fixtures", "parity")
    originals = sorted(p.relative_to(shared) for p in shared.rglob("*") if p.is_file())
    copied = [p for p in originals if p.suffix in (".png", ".npz")]
    assert copied, originals
    for rel in copied:
        ours = FIXTURE / rel
        if rel.suffix == ".png":
            assert ours.read_bytes() == (shared / rel).read_bytes(), rel
        else:
            a, b = np.load(ours), np.load(shared / rel)
            assert sorted(a) == sorted(b), rel
            for name in a:
                assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name])
    assert not (FIXTURE / "weights_recipe.py").exists()  # the recipe is our own code
