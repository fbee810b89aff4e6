"""Importable target for the "package.module:function" form of `method`."""


def on_event(ev):
    return ev


class Handlers:
    @staticmethod
    def nested(ev):
        return ev


NOT_CALLABLE = 42
