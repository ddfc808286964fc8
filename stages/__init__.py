"""Pipeline stages, one module per stage (plus shared media helpers)."""
