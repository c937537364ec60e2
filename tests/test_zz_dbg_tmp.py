import pytest
from tests.test_record_pdf import *
def test_dbg(deployment, tmp_path):
    unbroken = "x" * 400
    words = "The restore drill ran for forty minutes and passed on the second attempt. "
    note = (words * 70)[: 5000 - len(unbroken) - 1] + " " + unbroken
    url = "https://evidence.example.com/" + "a" * (2000 - len("https://evidence.example.com/"))
    ChecklistItem.objects.filter(section__deployment=deployment, title="Backup Strategy").update(note=note, evidence_url=url)
    data, _ = render(deployment)
    open("/tmp/rec/long.pdf","wb").write(data)
    flat = squeezed(text_of(data))
    sq = squeezed(note)
    for n in range(0, len(sq), 200):
        if sq[:n+200] not in flat:
            print("fails at", n, sq[n:n+200]); 
            i = flat.find(sq[:n]); print(flat[i+n-100:i+n+300]); break
