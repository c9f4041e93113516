"""One module per figure: ``ID``, ``TITLE``, ``draw(run) -> Figure`` and ``caption(run) -> str``.

A figure that the stored data cannot support raises ``FigureUnavailable`` with the reason;
`reports.catalogue` lists the figures with their ids, titles and captions.
"""
