"""What the checklist layer tells the layers above it, inside the transaction of the change.

Sent with `send()` (not `send_robust()`): a receiver that fails rolls the change back. The
receivers are connected in their AppConfig.ready(); nothing but these notices goes through
signals (paperless-ngx's documents/signals is the model).
"""

from django.dispatch import Signal

# Something a signature covers changed on a deployment's checklist: an item edit, uploaded
# evidence. Arguments: deployment, actor (None for the system); an item edit adds `item`
# and `status_changed`, so that receivers can look at only what the edit can affect.
checklist_changed = Signal()
