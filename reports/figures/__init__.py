"""One module per figure, each with ``draw(run: RunData) -> matplotlib.figure.Figure``.

A figure that the stored data cannot support raises ``FigureUnavailable`` with the reason;
`reports.catalogue` lists the figures with their ids, titles and captions.
"""
