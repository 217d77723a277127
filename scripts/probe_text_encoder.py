"""Can the prompt encoder understand wordings it never saw? Trains it alone, with a linear head,
to name the class of training captions, then reports its accuracy on the held-out templates.

    python scripts/probe_text_encoder.py                  # the encoder as configured
    python scripts/probe_text_encoder.py --kernel-size 1  # no neighbouring bytes

A conditional generator cannot follow a held-out prompt better than its encoder tells the
classes apart, so this is the quick check (a minute on a CPU) before a long text-to-image run.
"""

import argparse

import torch
import torch.nn.functional as F

from aigc.data.captions import caption_set
from aigc.nn.text_encoder import TextEncoder


def accuracy(encoder: TextEncoder, head: torch.nn.Linear, prompts: list[tuple[str, int]]) -> float:
    with torch.no_grad():
        predicted = head(F.normalize(encoder([text for text, _ in prompts]).pooled, dim=-1))
    labels = torch.tensor([label for _, label in prompts])
    return (predicted.argmax(dim=1) == labels).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--captions", default="digits")
    parser.add_argument("--kernel-size", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    captions = caption_set(args.captions)
    encoder = TextEncoder(kernel_size=args.kernel_size)
    # The GAN reads unit-length prompt vectors too; the head's scale stands in for a temperature.
    head = torch.nn.Linear(encoder.n_embd, captions.num_classes)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=3e-4)
    label_rng = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        labels = torch.randint(captions.num_classes, (args.batch_size,), generator=label_rng)
        vectors = F.normalize(encoder(captions.draw(labels, seed=step)).pooled, dim=-1)
        loss = F.cross_entropy(head(vectors) * 10, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: loss {loss.item():.3f}", flush=True)

    encoder.eval()
    train = accuracy(encoder, head, captions.prompts(heldout=False))
    heldout = accuracy(encoder, head, captions.prompts(heldout=True))
    print(f"accuracy: training templates {train:.1%}, held-out templates {heldout:.1%}")
    for template in captions.heldout_templates:
        prompts = [(captions.caption(template, c), c) for c in range(captions.num_classes)]
        print(f"  {accuracy(encoder, head, prompts):6.1%}  {template}")


if __name__ == "__main__":
    main()
