"""``fusionlab export``: turn a trained model into a Hub-style folder (safetensors + config + card)."""
from __future__ import annotations

HELP = "export a trained model as a save_pretrained folder (safetensors, config.json, model card)"
DESCRIPTION = (
    "Read a trained model (a .pt checkpoint such as runs/<run>/model.pt, a save_pretrained "
    "folder or a Hub id; default: the shipped student) and write it with save_pretrained: "
    "model.safetensors + config.json + a generated README.md model card. The folder loads "
    "with fusionlab.load_model(FOLDER), FusionNet.from_pretrained(FOLDER) and "
    "'fusionlab fuse --checkpoint FOLDER'; --push-to-hub also uploads it (needs 'hf auth login'). "
    "Example: fusionlab export runs/student/model.pt --out my-student")


def add_arguments(p) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="a .pt checkpoint, a save_pretrained folder or a Hub id (default: the shipped student)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--push-to-hub", metavar="OWNER/NAME", default=None,
                   help="also upload the folder to this Hub model repository (network and token needed)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")


def run(args) -> int:
    from ..api import load_model
    from ..models.net import count_parameters

    model = load_model(args.model)
    out = model.save_pretrained(args.out)
    print(f"{model.name} ({count_parameters(model) / 1e6:.2f} M parameters) -> {out} "
          "(model.safetensors, config.json, README.md)")
    if args.push_to_hub:
        from ..errors import ModelUnavailableError

        try:
            url = model.push_to_hub(args.push_to_hub, private=args.private or None)
        except Exception as e:  # no token, no network, no permission: one line
            raise ModelUnavailableError(f"push to {args.push_to_hub} failed ({type(e).__name__}: "
                                        f"{' '.join(str(e).split()).split('. ')[0][:160]})") from None
        print(f"uploaded: {url}")
    return 0
