import sys, warnings; warnings.simplefilter("ignore")
sys.path.insert(0, "tests")
from corpus.irregular_kinks import IRREGULAR, MODES
bad = 0
for c in IRREGULAR:
    row = []
    for m in MODES:
        try:
            r = c.run(m); st = r.status
            kinktxt = "kink" in str(r).lower()
        except Exception as e:
            st = "ERR:" + repr(e)[:80]; kinktxt = False
        exp = c.expected(m)
        flag = "" if st == exp else "  <-- expected " + str(exp)
        if st != exp: bad += 1
        row.append(f"{m}={st}{' K' if kinktxt and c.cls=='no_kink' else ''}{flag} ({r.max_ratio:.3g})")
    print(f"{c.name:<42} {c.kind:<8}", " | ".join(row))
print("mismatches", bad)
