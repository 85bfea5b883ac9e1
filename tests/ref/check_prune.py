#!/usr/bin/python3
"""Checks a pruned pack against its input from the manifests and tier files alone
(docs/FORMAT.md), written independently of prune/*.c:

    check_prune.py IN.mpk OUT.mpk

- the expert count in the manifest model and config.json is the kept count;
- per MoE layer, `kept` and `dropped` partition the experts, and with n_group groups
  every group keeps the same number;
- every router, router.bias and correction_bias of OUT holds exactly IN's rows (or
  elements) of the kept experts, in order;
- every expert record of OUT (layer, new id) has IN's raw bytes of (layer, kept id),
  except kept experts that `--merge` folded others into with a nonzero weight: those
  keep IN's tensor names, encodings and sizes (their values: tests/ref/prune_merge.py);
- with --merge, every dropped expert goes into a kept expert of its own group;
- with --refit-router, the router weights are exempt from the byte check (their values:
  prune_merge.py), router biases and correction biases are not.
Prints PASS:/FAIL: lines. Records must be uncompressed (codec none).
"""
import json
import os
import re
import sys


def load(pack):
    m = json.load(open(os.path.join(pack, "manifest.json")))
    return m, {t["name"]: t for t in m["tensors"]}


def record_bytes(pack, m, r):
    rec = m["records"][r]
    if rec["codec"] != "none":
        raise SystemExit(f"{pack}: record {r} is compressed")
    with open(os.path.join(pack, m["tiers"][rec["tier"]]["file"]), "rb") as f:
        f.seek(rec["offset"])
        return f.read(rec["length"])


def tensor_bytes(pack, m, t):
    rec = m["records"][t["record"]]
    part = rec["parts"][t["part"]]
    return record_bytes(pack, m, t["record"])[part["offset"]:part["offset"] + part["length"]]


def main():
    src, out = sys.argv[1], sys.argv[2]
    mi, ti = load(src)
    mo, to = load(out)
    prune = mo["provenance"]["prune"]
    E, K = prune["experts_before"], prune["experts_after"]
    cfg = json.load(open(os.path.join(out, "config.json")))
    counts = [cfg[k] for k in ("num_local_experts", "num_experts", "n_routed_experts") if k in cfg]
    ok = mo["model"]["routing"]["experts"] == K and counts == [K]
    print(("PASS" if ok else "FAIL") + f": expert count {K} in the manifest and config.json")
    n_layers, groups = mi["model"]["layers"], prune["groups"]
    failures = 0
    layers, changed = {}, set()
    for L in prune["layers"]:
        size = E // groups
        for mg in L.get("merged", []):
            e, k = mg["expert"], mg["into"]
            if k not in L["kept"] or e not in L["dropped"] or e // size != k // size:
                failures += 1
                print(f"FAIL: layer {L['layer']}: expert {e} merged into {k}, not a kept expert of its group")
            if mg["weight"] > 0:
                changed.add((L["layer"], L["kept"].index(k)))
        kept, dropped = L["kept"], L["dropped"]
        per = [sum(1 for e in kept if e // (E // groups) == g) for g in range(groups)]
        if sorted(kept + dropped) != list(range(E)) or len(kept) != K or len(set(per)) != 1:
            failures += 1
            print(f"FAIL: layer {L['layer']}: kept {kept} dropped {dropped} over {groups} groups")
        layers[L["layer"]] = kept
    if not failures:
        print(f"PASS: {len(layers)} layers keep {K} of {E} experts, {K // groups} per group")
    sliced = 0
    for name, t in to.items():
        m = re.fullmatch(r"(layers|mtp)\.(\d+)\.(router|router\.bias|correction_bias)", name)
        if not m:
            continue
        layer = int(m.group(2)) + (n_layers if m.group(1) == "mtp" else 0)
        a, b = tensor_bytes(src, mi, ti[name]), tensor_bytes(out, mo, t)
        unit = len(a) // E
        if m.group(3) == "router" and "router_refit" in prune:
            if len(b) != unit * K or t["encoding"] != ti[name]["encoding"]:
                failures += 1
                print(f"FAIL: refit {name} is not {K} rows in the input's encoding")
            sliced += 1
            continue
        want = b"".join(a[e * unit:(e + 1) * unit] for e in layers[layer])
        if b != want:
            failures += 1
            print(f"FAIL: {name} is not the input's kept rows")
        sliced += 1
    print(("PASS" if sliced and not failures else "FAIL") + f": {sliced} routing tensors hold the input's kept rows")
    by_key = {(r["layer"], r["expert"]): i for i, r in enumerate(mi["records"]) if r["expert"] >= 0}
    same = 0
    for i, r in enumerate(mo["records"]):
        if r["expert"] < 0:
            continue
        orig = layers[r["layer"]][r["expert"]]
        if (r["layer"], r["expert"]) in changed:
            a, b = mi["records"][by_key[(r["layer"], orig)]], r
            names = [mo["tensors"][p["tensor"]]["name"].replace(f".experts.{r['expert']}.", f".experts.{orig}.")
                     for p in b["parts"]]
            if [mi["tensors"][p["tensor"]]["name"] for p in a["parts"]] != names or \
                    [p["length"] for p in a["parts"]] != [p["length"] for p in b["parts"]]:
                failures += 1
                print(f"FAIL: merged layer {r['layer']} expert {r['expert']} does not keep input expert {orig}'s layout")
            same += 1
            continue
        if record_bytes(out, mo, i) != record_bytes(src, mi, by_key[(r["layer"], orig)]):
            failures += 1
            print(f"FAIL: layer {r['layer']} expert {r['expert']} is not input expert {orig}")
        same += 1
    print(("PASS" if same == K * len(layers) and not failures else "FAIL") +
          f": {same} expert records are the input's kept records byte for byte ({len(changed)} merged: same layout)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
