"""`fusionlab caption`: caption every image pair of a dataset into a JSON/CSV caption file."""
from __future__ import annotations

HELP = "caption image pairs (rules, oracle, MLLM, ...) into a caption file for text-guided training"
DESCRIPTION = """\
Describe every IR/VI pair with a captioner and write {name: caption} to --out (JSON, or CSV by
suffix). Captions have the DTPF form 'Event Type: <X>\\nDescription: ...'. Resumes an existing
--out (skips names already captioned) unless --no-resume. Examples:
fusionlab caption --root ../shared/data/msrs/test --captioner rules --out captions.json;
fusionlab caption --ir DIR --vi DIR --captioner mllm --model Qwen/Qwen2-VL-7B-Instruct --out captions.json"""


def add_arguments(p) -> None:
    p.add_argument("--root", help="dataset root with ir/ and vi/ sub-folders (instead of --ir/--vi)")
    p.add_argument("--ir", help="infrared image folder")
    p.add_argument("--vi", help="visible image folder")
    p.add_argument("--captioner", default="rules",
                   help="a registered captioner: rules (default) | oracle | file | mllm | constant | shuffled")
    p.add_argument("--out", required=True, help="caption file to write (.json or .csv)")
    p.add_argument("--model", default="Qwen/Qwen2-VL-7B-Instruct",
                   help="mllm: local folder or hub name (default Qwen/Qwen2-VL-7B-Instruct)")
    p.add_argument("--task", default="ir_vi", choices=("ir_vi", "medical"), help="mllm: prompt to use")
    p.add_argument("--device", default="auto", help="mllm: auto | cpu | cuda[:N]")
    p.add_argument("--max-new-tokens", type=int, default=64, help="mllm: answer length limit")
    p.add_argument("--caption-file", help="file / shuffled: caption file to read")
    p.add_argument("--label", help="oracle: the known degradation of every pair (e.g. normal)")
    p.add_argument("--style", default="descriptive", choices=("descriptive", "reference"),
                   help="rules/oracle wording (reference = DTPF's 'This image has <X> condition.')")
    p.add_argument("--seed", type=int, default=0, help="shuffled: permutation seed")
    p.add_argument("--limit", type=int, help="caption at most N new pairs")
    p.add_argument("--no-resume", action="store_true", help="recaption everything, ignoring an existing --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import sys
    from collections import Counter

    from ..data import resolve_layout
    from ..errors import UsageError
    from ..text.captioners import CAPTIONERS, caption_folder
    from ..text.captions import parse_event_type

    if args.root:
        ir_dir, vi_dir = resolve_layout(args.root)
    elif args.ir and args.vi:
        ir_dir, vi_dir = args.ir, args.vi
    else:
        raise UsageError("give --root DIR or both --ir DIR and --vi DIR")
    name = args.captioner
    if name == "oracle" and not args.label:
        raise UsageError("--captioner oracle needs --label LABEL (the known degradation of these pairs)")
    # the options of this command, each given to the captioners that take it (same names as in Python)
    options = dict(style=args.style, caption_file=args.caption_file, seed=args.seed, model=args.model, task=args.task,
                   device=args.device, max_new_tokens=args.max_new_tokens)
    cfg = {"type": name, **CAPTIONERS.accepted(name, {k: v for k, v in options.items() if v is not None})}
    caps = caption_folder(cfg, ir_dir, vi_dir, args.out, resume=not args.no_resume, labels=args.label,
                          limit=args.limit, progress=not args.quiet)
    counts = Counter(parse_event_type(c) for c in caps.values())
    summary = ", ".join(f"{k} {v}" for k, v in counts.most_common())
    sys.stdout.write(f"{args.out}: {len(caps)} captions ({summary})\n")
    return 0
