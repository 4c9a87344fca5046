"""Tables de quartier: the organisations that run them and the people who take part."""
