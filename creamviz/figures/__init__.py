"""Pure plotly figure builders: ``fig_*(data, *, title=None, ...) -> go.Figure``.

Builders never call ``.show()`` and do no computation beyond arranging the data they are given;
the numbers come from ``creamviz.samplers`` / ``coverage`` / ``theorem`` / ``evaluate`` /
``attention``. One submodule per topic; everything is re-exported here.
"""

from creamviz.figures.attention import *  # noqa: F401,F403
from creamviz.figures.audit import *  # noqa: F401,F403
from creamviz.figures.coverage import *  # noqa: F401,F403
from creamviz.figures.evaluation import *  # noqa: F401,F403
from creamviz.figures.proof import *  # noqa: F401,F403
from creamviz.figures.real_model import *  # noqa: F401,F403
from creamviz.figures.rope import *  # noqa: F401,F403
from creamviz.figures.sampling import *  # noqa: F401,F403
from creamviz.figures.study import *  # noqa: F401,F403
from creamviz.figures.style import ARM_COLORS, METHOD_COLORS, display_name, method_color  # noqa: F401 - the one palette and the display names
from creamviz.figures.training import *  # noqa: F401,F403
