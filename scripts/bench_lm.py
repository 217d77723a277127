"""Tokens/s and MFU of the GPT through the framework and a plain PyTorch loop, for each speed knob
(fp32 / bf16 mixed precision, eager / torch.compile), in one run.

    python scripts/bench_lm.py --data-dir ../shared/data
    python scripts/bench_lm.py --device cuda --experiment shakespeare_char --steps 300
    python scripts/bench_lm.py --experiment mnist_text_image --image-tokenizer <tokenizer run>

By default it trains the ``experiment=shakespeare_char_cpu`` model (4 layers, 4 heads, 128 wide,
block 64, batch 12): the plain loop trains the same GPT with the same optimizer, schedule and
gradient clipping. With the text + image model (``--image-tokenizer``), the plain loop trains the
same GPT on the same rows (captions and the cached image codes, in a random order per example,
captions dropped as configured), with the same optimizer, schedule and EMA, and counts the tokens
the rows feed (captions cut to their batch's longest; the few more cut when guidance drops a
caption are left out). The harness (benchlib.py) times both and prints what it measured.
"""

import torch
import torch.nn.functional as F
from benchlib import Batch, Family, Run, Step, Variant, main, parser
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from aigc.core.optim import warmup_cosine, weight_decay_groups
from aigc.models.text_image import TextImageModel
from aigc.models.text_image.network import TextImageGPT
from aigc.nn.gpt import GPT


def new_network(
    cls: type[torch.nn.Module], vocab_size: int, block_size: int, run: Run, variant: Variant
) -> torch.nn.Module:
    """A fresh ``cls`` (``GPT`` or ``TextImageGPT``) of the run's sizes, on its device."""
    hp = run.model.hparams
    network = cls(
        vocab_size,
        block_size,
        hp.n_layer,
        hp.n_head,
        hp.n_embd,
        hp.dropout,
        hp.bias,
        hp.get("position_encoding", "learned"),  # the text + image model's are learned
    ).to(run.device)
    if variant.compile:
        network.compile()
    return network


def plain_step(run: Run, variant: Variant) -> Step:
    """The language model's training step written out by hand."""
    if isinstance(run.model, TextImageModel):
        return plain_text_image_step(run, variant)
    lm, hp, device = run.model, run.model.hparams, run.device
    decay_steps = hp.lr_decay_steps or run.trainer.max_steps
    model = new_network(GPT, lm.tokenizer.vocab_size, hp.block_size, run, variant)
    params = list(model.parameters())
    groups = weight_decay_groups(params, hp.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, hp.warmup_steps, decay_steps, hp.min_lr / hp.lr)
    )
    scaler = variant.grad_scaler(device)
    clip = run.trainer.gradient_clip_val

    def step(batch: Batch) -> None:
        x, y = batch["tokens"][:, :-1], batch["tokens"][:, 1:]
        with variant.autocast(device), lm.attention():  # the framework's attention kernels
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        scaler.step(optimizer)
        scaler.update()
        schedule.step()

    return step


def plain_text_image_step(run: Run, variant: Variant) -> Step:
    """The text + image model's training step written out by hand."""
    model, hp, device = run.model, run.model.hparams, run.device
    block_size = model.network.block_size
    network = new_network(TextImageGPT, model.vocab.vocab_size, block_size, run, variant)
    ema = None
    if hp.ema_decay:
        ema = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(hp.ema_decay))
    groups = weight_decay_groups(network.parameters(), hp.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, hp.warmup_steps))
    )
    model.to(device)  # its rows and position ids, which the loop shares
    run.datamodule.tokenize_images(model.image_tokenizer)
    generator = torch.Generator().manual_seed(0)
    pad = model.vocab.special["pad"]

    def step(batch: Batch) -> None:
        n = len(batch["text"])
        image_first = torch.rand(n, generator=generator) < hp.image_to_text_prob
        dropped = torch.rand(n, generator=generator) < hp.uncond_prob
        texts = ["" if drop else text for text, drop in zip(batch["text"], dropped, strict=True)]
        rows = model.layout.rows(texts, batch["codes"].long(), image_first)
        targets = rows[:, 1:].masked_fill(rows[:, 1:] == pad, -100)
        with variant.autocast(device), model.attention():  # its position ids and mask
            logits = model.layout.logits(network, rows, image_first)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if ema is not None:
            ema.update_parameters(network)

    return step


def tokens(model, batch: Batch) -> int:
    """The tokens a batch feeds: all but each row's last."""
    if isinstance(model, TextImageModel):  # rows cut to the batch's longest caption
        layout = model.layout
        return len(batch["text"]) * (layout.caption_length(batch["text"]) + layout.image_length - 1)
    return batch["tokens"][:, :-1].numel()


if __name__ == "__main__":
    cli = parser(__doc__, experiment="shakespeare_char_cpu", steps=250, warmup=30)
    cli.add_argument(
        "--image-tokenizer",
        help="the text + image model's image tokenizer (a run of model=image_tokenizer)",
    )
    args = cli.parse_args()
    if args.image_tokenizer:
        args.overrides.append(f"model.image_tokenizer={args.image_tokenizer}")
    main(args, Family("tokens", tokens, plain_step))
