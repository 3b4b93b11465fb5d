import numpy as np
from pytest_gradcheck import check_jacobian, check_gradient
rng=np.random.default_rng(5); B=rng.normal(size=(40,3)); A=B.T@B; c=50.0
# least-squares-like loss at its optimum w=0: 0.5 w'Aw + c/4 * w0^4 (a quartic residual term)
def score(w): s=A@w; s=s.copy(); s[0]+=c*w[0]**3; return s
def hess_ok(w): H=A.copy(); H[0,0]+=3*c*w[0]**2; return H
def hess_bug(w): H=hess_ok(w); H[0,0]*=2; return H
w0=np.zeros(3)
for h in (hess_ok,hess_bug):
  for mode in ("full","fast","auto"):
    r=check_jacobian(score, w0, h, mode=mode)
    d=r.to_dict(); ws=d.get('worst') or []
    print(h.__name__, mode, r.status, round(r.max_ratio,3), [ (e.get('reason') or '')[:150] for e in ws][:2])
