"""Tables, figures and the report page regenerated from run directories."""
