"""Adam, with its learning rate cut when the validation loss stalls, on plain tensors.

Every ``torch.optim`` optimiser imports torch's compiler (``torch._dynamo``) when
the first is made: 1.8 s on a 2-core machine, more than training a 1600-pixel
cube takes, and it holds the interpreter's lock while it runs. Training needs no
compiler, so the two small rules it uses are written here:

* :class:`Adam` is ``torch.optim.Adam``'s update (one tensor at a time, no weight
  decay, no AMSGrad), operation for operation;
* :class:`PlateauSchedule` is ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s
  rule (mode ``"min"``, relative threshold, no cooldown).

``tests/core/test_optimiser.py`` checks that both give torch's weights bit for bit on the
CPU. On a GPU ``torch.optim.Adam`` would take its multi-tensor form: the same update,
equal to rounding.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class Adam:
    """Adam (Kingma & Ba), as ``torch.optim.Adam`` with its defaults.

    Parameters
    ----------
    parameters
        The tensors to train.
    learning_rate
        The step size; :class:`PlateauSchedule` lowers it.
    betas
        Decay rates of the gradient's first and second moments.
    eps
        Added to the second moment's root, so that a step is never divided by zero.
    """

    def __init__(
        self,
        parameters: Iterable[torch.nn.Parameter],
        learning_rate: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.parameters = list(parameters)
        self.learning_rate = learning_rate
        self.betas = betas
        self.eps = eps
        # Per parameter, as torch counts them: a step without a gradient does not count.
        self._steps = [0] * len(self.parameters)
        self._first_moments = [torch.zeros_like(parameter) for parameter in self.parameters]
        self._second_moments = [torch.zeros_like(parameter) for parameter in self.parameters]

    def zero_grad(self) -> None:
        """Forget the gradients of the last step."""
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Move every parameter with a gradient one step."""
        beta1, beta2 = self.betas
        moments = zip(self._first_moments, self._second_moments, strict=True)
        for index, (parameter, (first, second)) in enumerate(zip(self.parameters, moments, strict=True)):
            gradient = parameter.grad
            if gradient is None:
                continue
            self._steps[index] += 1
            # A float, as torch's float32 step counter gives it: exact below 2**24 steps.
            step = float(self._steps[index])
            step_size = self.learning_rate / (1.0 - beta1**step)
            second_correction = (1.0 - beta2**step) ** 0.5
            first.lerp_(gradient, 1.0 - beta1)
            second.mul_(beta2).addcmul_(gradient, gradient, value=1.0 - beta2)
            denominator = (second.sqrt() / second_correction).add_(self.eps)
            parameter.addcdiv_(first, denominator, value=-step_size)


class PlateauSchedule:
    """Cut ``optimiser``'s learning rate by ``factor`` once the loss has not improved
    for more than ``patience`` epochs in a row.

    A loss improves when it is below the best so far by more than ``threshold``
    of it. A cut that would change the rate by less than ``min_cut`` is not made.
    """

    def __init__(
        self, optimiser: Adam, factor: float, patience: int, threshold: float = 1e-4, min_cut: float = 1e-8
    ) -> None:
        self.optimiser = optimiser
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.min_cut = min_cut
        self.best = float("inf")
        self.epochs_without_improvement = 0

    def step(self, loss: float) -> None:
        """Record one epoch's ``loss``; cut the learning rate if it has stalled."""
        if loss < self.best * (1.0 - self.threshold):
            self.best = loss
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        if self.epochs_without_improvement > self.patience:
            cut = self.optimiser.learning_rate * self.factor
            if self.optimiser.learning_rate - cut > self.min_cut:
                self.optimiser.learning_rate = cut
            self.epochs_without_improvement = 0
