"""A course lab: does a model know when it is attacked? MC dropout and a deep ensemble on
clean and adversarial handwritten digits, then temperature scaling.

Runs on a laptop CPU in well under a minute, offline (digits from scikit-learn):

    python examples/lab_uncertainty.py [--out lab_out] [--fast]

It trains a tiny CNN with dropout (for MC dropout) and a few without (a deep ensemble),
attacks each wrapper with PGD, and prints robust accuracy, how well epistemic uncertainty
(mutual information) and total uncertainty tell attacked digits from clean ones (AUROC), and
the calibration error (ECE) of one network before and after temperature scaling. Figures in
the output folder:

- epistemic.png: histograms of the epistemic uncertainty, clean vs attacked, per model;
- reliability.png: reliability diagrams of one network on clean digits before and after
  temperature scaling, and on attacked digits after it (a temperature fitted on clean
  data does not make a model calibrated under attack).

`--fast` trains fewer epochs and members and draws fewer dropout samples (what CI runs).
The data, network and training loop are those of lab_attacks.py, next to this file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from lab_attacks import load_split, tiny_cnn, train
from matplotlib.figure import Figure

from attacks import pgd, robust_accuracy
from robustbench_local.plotting import plot_reliability
from uncertainty import DeepEnsemble, MCDropout, TemperatureScaler, decompose, metrics

EPS = 0.1  # linf, pixels in [0, 1]: PGD fools about half of one network's digits here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("lab_out"), help="figure folder")
    parser.add_argument("--fast", action="store_true", help="fewer epochs, members, samples")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    epochs, members, samples, steps = (8, 3, 10, 10) if args.fast else (15, 5, 30, 20)

    x_train, y_train, x_test, y_test = load_split()
    # The last 200 training digits are held out to fit the temperature on.
    x_fit, y_fit, x_val, y_val = x_train[:-200], y_train[:-200], x_train[-200:], y_train[-200:]

    torch.manual_seed(0)
    dropout_net = train(tiny_cnn(dropout=0.5), x_fit, y_fit, epochs=epochs)
    # generator=0: the dropout masks change on every call, but the sequence of masks repeats
    # from run to run. With generator=None they come from torch's global RNG.
    models = {"MC dropout": MCDropout(dropout_net, samples=samples, generator=0)}
    nets = []
    for seed in range(members):
        torch.manual_seed(seed)  # members differ by their initialisation and batch order
        nets.append(train(tiny_cnn(), x_fit, y_fit, epochs=epochs, seed=seed))
    models[f"ensemble of {members}"] = DeepEnsemble(nets)

    fig = Figure(figsize=(4.2 * len(models), 3.4), layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    print(f"PGD-{steps} at eps {EPS}; AUROC: attacked (positive) vs clean digits, by score")
    print(f"{'model':>16} {'clean':>7} {'robust':>7} {'AUROC epistemic':>16} {'AUROC total':>12}")
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        # Wrappers return log mean probabilities: valid logits, so pgd attacks them as is.
        x_adv = pgd(model, x_test, y_test, EPS, steps=steps, generator=0)
        clean_acc = robust_accuracy(model, x_test, y_test)
        robust_acc = robust_accuracy(model, x_adv, y_test, x=x_test)
        # Samples of a plain input carry no graph: the parts plot and convert directly.
        u_clean = decompose(model.sample_probs(x_test))
        u_adv = decompose(model.sample_probs(x_adv))
        attacked = torch.cat([torch.zeros(len(x_test)), torch.ones(len(x_adv))]).bool()
        auroc = {
            part: metrics.auroc(torch.cat([getattr(u_clean, part), getattr(u_adv, part)]), attacked)
            for part in ("epistemic", "total")
        }
        print(
            f"{name:>16} {clean_acc:7.1%} {robust_acc:7.1%} {auroc['epistemic']:16.3f} "
            f"{auroc['total']:12.3f}"
        )
        top = float(torch.cat([u_clean.epistemic, u_adv.epistemic]).max())
        edges = torch.linspace(0, top, 31)
        ax.hist(u_clean.epistemic, bins=edges, color="#8C8C8C", alpha=0.6, label="clean")
        ax.hist(u_adv.epistemic, bins=edges, color="#D55E00", alpha=0.6, label=f"PGD eps {EPS}")
        ax.set_title(f"{name}: AUROC {auroc['epistemic']:.2f}", fontsize=10)
        ax.set_xlabel("epistemic uncertainty (mutual information, nats)")
        ax.set_ylabel("digits")
        ax.legend(frameon=False)
    fig.savefig(args.out / "epistemic.png", dpi=120)

    # Temperature scaling of one network: T is fitted on held-out logits (never
    # probabilities), and calibrate() returns a new module; the network is unchanged.
    net = nets[0]
    with torch.no_grad():
        scaler = TemperatureScaler().fit(net(x_val), y_val)
    calibrated = scaler.calibrate(net)
    x_adv = pgd(calibrated, x_test, y_test, EPS, steps=steps, generator=0)
    with torch.no_grad():
        before = net(x_test).softmax(dim=1)
        after = calibrated(x_test).softmax(dim=1)
        attacked_after = calibrated(x_adv).softmax(dim=1)
    t = float(scaler.temperature)
    print(
        f"temperature {t:.2f}: ECE on clean test digits {metrics.ece(before, y_test):.3f} -> "
        f"{metrics.ece(after, y_test):.3f}, NLL {metrics.nll(before, y_test):.3f} -> "
        f"{metrics.nll(after, y_test):.3f}; ECE on attacked digits (eps {EPS}) "
        f"{metrics.ece(attacked_after, y_test):.3f}"
    )
    fig = plot_reliability(
        {
            "clean, before": before,
            f"clean, after (T = {t:.2f})": after,
            f"PGD eps {EPS}, after": attacked_after,
        },
        y_test,
        title="one network: temperature scaling, then attacked",
    )
    fig.savefig(args.out / "reliability.png", dpi=120)
    print(f"figures: {args.out / 'epistemic.png'}, {args.out / 'reliability.png'}")


if __name__ == "__main__":
    main()
