"""The export componentize-py looks for: the ``function`` interface, served
from the functions registered with ``@function``. ``rh-wasm build`` makes a
main module that imports the user's file, then this."""

from wit_world import exports

import rh_guest


class Function(exports.Function):
    def describe(self):
        return rh_guest._describe()

    def call(self, name, args):
        return rh_guest._call(name, args)
