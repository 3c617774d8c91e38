"""Server-rendered pages: one base layout, zh-CN and en, Plotly served from the installed package."""
