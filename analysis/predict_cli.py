"""`scaling allocate`: from a saved fit to the compute-optimal N, D and model shape for a budget.
Heavy imports stay inside the commands so that `scaling --help` stays fast."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    a = subparsers.add_parser("allocate", help="compute-optimal N, D and model shape for a budget",
                              description="From a saved fit and a FLOP budget: N_opt, D_opt, L_opt, shape.")
    a.add_argument("--fit", required=True, metavar="FIT.json", help="a fit written by `scaling fit --out`")
    a.add_argument("--budget", required=True, type=float, metavar="C", help="training FLOPs, e.g. 1e21")
    a.add_argument("--vocab-size", type=int, default=256)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=run_allocate)


def run_allocate(args) -> int:
    from analysis.allocate import allocate
    from analysis.cli import _jsonable
    from analysis.result import load_fit

    result = load_fit(args.fit)
    alloc = allocate(result, args.budget, vocab_size=args.vocab_size)
    if args.json:
        print(json.dumps(alloc.to_dict(), indent=2, allow_nan=False, default=_jsonable))
        return 0
    print(f"budget C = {alloc.C:.3g} FLOPs ({result.spec.method} fit, N convention {alloc.n_convention})")
    for name in ("N_opt", "D_opt", "L_opt", "tokens_per_param"):
        value = getattr(alloc, name)
        if value is None:
            continue
        ci = alloc.intervals.get(name)
        print(f"  {name:<17}{value:12.4g}" + (f"   [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""))
    if alloc.shape:
        s = alloc.shape
        print(f"  shape            d_model={s['d_model']} n_layers={s['n_layers']} n_heads={s['n_heads']} "
              f"d_ff={s['d_ff']} vocab={s['vocab_size']} -> N={s['n_params']:,} "
              f"(non-embedding {s['n_params_nonembedding']:,})")
    for note in alloc.notes:
        print(f"  note: {note}")
    return 0
