"""Training: data, the tasks that turn it into losses, optimizers, the loop, checkpoints.

    data.py        the built-in corpus, batches, BERT's masking, a labelled set
    tasks.py       LMTask, MLMTask, ClassifyTask: a batch -> a loss and its gradient
    optim.py       SGD, Adam, AdamW, gradient clipping, warm-up + cosine schedule
    trainer.py     TrainConfig, Trainer: the loop, evaluation, logging, exact resume
    checkpoint.py  atomic, pickle-free checkpoints (one .npz file)
    parallel.py    DataParallel: batch shards on CPU cores, one model replica per thread
"""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .optim import SGD, Adam, AdamW, clip_grad_norm, lr_schedule, param_groups
from .parallel import DataParallel
from .trainer import TrainConfig, Trainer, TrainingDiverged

__all__ = ["SGD", "Adam", "AdamW", "clip_grad_norm", "lr_schedule", "param_groups", "TrainConfig", "Trainer",
           "TrainingDiverged", "DataParallel", "CheckpointError", "load_checkpoint", "save_checkpoint"]
