"""Route modules; each exposes setup(app) or a RouteTableDef."""
