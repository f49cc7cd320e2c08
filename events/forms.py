from django import forms

from events.validation import MAX_NAME_LENGTH


class PublishForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME_LENGTH, strip=True)
    data = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 4}))
