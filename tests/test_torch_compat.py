"""The private torch APIs behind genrl_core.torch_compat exist and behave as the core expects (an upgrade that
removes or changes one fails here, not deep inside seed packing or fast sampling)."""
import torch

from genrl_core import torch_compat as tc


def test_batch_dim_round_trip_under_a_vmap_level():
    x = torch.arange(6.0).reshape(3, 2)
    level = tc.vmap_increment_nesting(3, "error")
    try:
        b = tc.add_batch_dim(x, 0, level)
        assert tc.is_batchedtensor(b) and tc.maybe_get_level(b) == level and tc.maybe_get_bdim(b) == 0
        assert torch.equal(tc.get_unwrapped(b), x)
        assert torch.equal(tc.remove_batch_dim(b * 2, level, 3, 0), x * 2)
        with tc.disable_functorch():
            assert not tc.is_batchedtensor(torch.zeros(2))
    finally:
        tc.vmap_decrement_nesting()


def test_parameter_version_rises_with_in_place_updates_and_own_parameters():
    lin = torch.nn.Linear(2, 2)
    before = tc.parameter_version(lin.weight)
    with torch.no_grad():
        lin.weight.add_(1.0)
    assert tc.parameter_version(lin.weight) == before + 1
    assert set(tc.own_parameters(lin)) == {"weight", "bias"}
    assert tc.own_parameters(torch.nn.Sequential(lin)) == {}


def test_foreach_lerp_reparametrize_and_tree_map():
    a, b = [torch.zeros(2)], [torch.ones(2)]
    tc.foreach_lerp_(a, b, 0.25)
    assert torch.allclose(a[0], torch.full((2,), 0.25))
    lin = torch.nn.Linear(1, 1, bias=False)
    with tc.reparametrize_module(lin, {"weight": torch.full((1, 1), 3.0)}):
        assert float(lin(torch.ones(1, 1))) == 3.0
    assert tc.tree_map(lambda v: v + 1, {"x": 1, "y": [2]}) == {"x": 2, "y": [3]}
