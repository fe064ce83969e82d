"""User feedback: corrections of the predicted emotion and votes on the reviews shown,
stored with consent rules (:mod:`.store`), summarised (:mod:`.report`) and merged into the
next training's train split (:mod:`.training`)."""
