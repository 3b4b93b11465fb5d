import numpy as np, warnings
warnings.simplefilter("ignore")
from pytest_gradcheck import check_gradient
import scipy.special as sp
x=np.array([-1/np.e+1e-8, 0.5])
lw=lambda x: float(np.sum(sp.lambertw(x).real))
def lwg(x, fac=1.0):
    w=sp.lambertw(x).real; return fac*w/(x*(1+w))
print(lwg(x))
for mode in ("full","fast"):
    print(check_gradient(lw, x, lwg, mode=mode))
