"""Errors whose one-line message names the parameters at fault.

The library cannot know what its callers call a parameter: a binary's flag
(``--num_cpu_devices``) or a keyword argument (``num_cpu_devices``). A
message marks each parameter name as ``{name}``; ``str()`` shows it bare,
and ``worded(names)`` shows the caller's name for it, e.g. its flag.
"""

import re

_PARAMETER = re.compile(r"\{(\w+)\}")


class NamesParameters:
    """Mixin of an exception whose first argument marks parameter names as ``{name}``."""

    def worded(self, names=None):
        """The message with each ``{name}`` as ``names[name]`` (bare when absent)."""
        names = names or {}
        return _PARAMETER.sub(lambda m: names.get(m[1], m[1]), str(self.args[0]))

    def __str__(self):
        return self.worded()
