"""The optimiser and its learning-rate schedule give torch.optim's numbers exactly."""

from __future__ import annotations

import torch
from torch import nn

from napari_deepcube.core.optimiser import Adam, PlateauSchedule


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 12))


def _epoch_losses() -> list[float]:
    # Falling, then stalled for fifteen cuts: nine are made, down to 3.8e-9; the rest would
    # change the rate by less than 1e-8, which ReduceLROnPlateau does not do.
    return [1.0, 0.8, 0.7, 0.69, 0.68] + [0.68] * 30


def _train(make_optimiser, make_schedule, learning_rate_of) -> tuple[list[torch.Tensor], list[float]]:
    model = _model()
    optimiser = make_optimiser(model.parameters())
    schedule = make_schedule(optimiser)
    generator = torch.Generator().manual_seed(1)
    rates = []
    for epoch, epoch_loss in enumerate(_epoch_losses()):
        for _ in range(3):
            batch = torch.randn(16, 12, generator=generator)
            optimiser.zero_grad()
            hidden = model[1](model[0](batch))
            if epoch % 2 == 0:
                # The first layer sits out every other epoch: its steps are counted apart.
                hidden = hidden.detach()
            ((model[2](hidden) - batch) ** 2).mean().backward()
            optimiser.step()
        schedule.step(epoch_loss)
        rates.append(learning_rate_of(optimiser))
    return [parameter.detach().clone() for parameter in model.parameters()], rates


def test_adam_and_its_plateau_schedule_give_torchs_weights_and_rates_bit_for_bit():
    ours, our_rates = _train(
        lambda parameters: Adam(parameters, 1e-3),
        lambda optimiser: PlateauSchedule(optimiser, factor=0.25, patience=1),
        lambda optimiser: optimiser.learning_rate,
    )
    torchs, torch_rates = _train(
        lambda parameters: torch.optim.Adam(parameters, lr=1e-3),
        lambda optimiser: torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.25, patience=1),
        lambda optimiser: optimiser.param_groups[0]["lr"],
    )
    assert our_rates == torch_rates
    assert len(set(torch_rates)) > 8, "the schedule cut the rate many times, down to its smallest cut"
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs, strict=True))


def test_parameters_without_a_gradient_stay_where_they_are():
    model = _model()
    frozen = model[2].weight.detach().clone()
    optimiser = Adam(model.parameters(), 1e-2)
    model[0](torch.ones(1, 12)).sum().backward()
    optimiser.step()
    assert torch.equal(model[2].weight, frozen)
    assert model[0].weight.grad is not None
    optimiser.zero_grad()
    assert all(parameter.grad is None for parameter in model.parameters())
