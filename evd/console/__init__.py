"""The urwid panels of ``evctl attach``: drawn only from the control socket's watch stream."""
