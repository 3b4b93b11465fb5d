import numpy as np, warnings
warnings.simplefilter("ignore")
from pytest_gradcheck import check_gradient
x=np.linspace(0.1,0.9,7)
st=lambda x: float(np.sum(np.round(x,3)**2))
print(check_gradient(st, x, lambda x: np.zeros_like(x)))
print(check_gradient(st, x, lambda x: np.round(x,3)))
