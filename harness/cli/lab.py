"""`harness lab`: the group the lab commands (lab_*.py) are added to."""

import click

from . import lab_overfit, lab_training


@click.group()
def lab():
    """Live, measured demonstrations of the lectures' lessons.

    \b
    Overfitting the leaderboard:
      harness lab overfit digits        tune by the public board vs by validation
      harness lab attack noise-binary   Blum & Hardt's boosting attack, Kaggle vs Ladder
      harness lab holdout-reuse         Dwork et al.'s reusable holdout (Thresholdout)
    Training diagnostics:
      harness lab diagnose digits       model bias vs optimization vs overfitting
      harness lab hessian               critical points by the Hessian's eigenvalues
      harness lab batch digits          batch size: time, noise, accuracy
      harness lab optimizers digits     SGD, momentum, Adagrad, RMSProp, Adam
    Images:
      harness lab augment shapes        no, label-safe and label-breaking augmentation
    """


for command in (lab_overfit.overfit, lab_overfit.attack, lab_overfit.holdout_reuse,
                lab_training.diagnose, lab_training.hessian, lab_training.batch,
                lab_training.optimizers, lab_training.augment):
    lab.add_command(command)
