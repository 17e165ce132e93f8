(function(){
  function card(el){return el.closest('.session');}
  function seek(a,t){
    if(a.readyState>=1){a.currentTime=t;}
    else{a.addEventListener('loadedmetadata',function(){a.currentTime=t;},{once:true});}
    var p=a.play(); if(p&&p.catch){p.catch(function(){});}
  }
  document.addEventListener('click',function(ev){
    var b=ev.target.closest('button[data-t]'); if(!b){return;}
    seek(card(b).querySelector('audio'),parseFloat(b.getAttribute('data-t')));
  });
  document.addEventListener('play',function(ev){
    var a=ev.target; if(a.tagName!=='AUDIO'){return;}
    document.querySelectorAll('audio').forEach(function(o){if(o!==a){o.pause();}});
    var c=card(a), d=c.querySelector('details'); if(d){d.open=true;}
    if('mediaSession' in navigator&&window.MediaMetadata){
      var img=c.querySelector('img.art');
      navigator.mediaSession.metadata=new MediaMetadata({title:c.getAttribute('data-title')||'',
        artist:c.getAttribute('data-artist')||'',album:document.body.getAttribute('data-album')||'',
        artwork:img?[{src:img.src}]:[]});
    }
  },true);
  document.addEventListener('timeupdate',function(ev){
    var a=ev.target; if(a.tagName!=='AUDIO'){return;}
    var now=null;
    card(a).querySelectorAll('button[data-t]').forEach(function(b){
      if(parseFloat(b.getAttribute('data-t'))<=a.currentTime+0.05){now=b;}
    });
    card(a).querySelectorAll('button[data-t]').forEach(function(b){
      if(b===now){b.setAttribute('aria-current','true');}else{b.removeAttribute('aria-current');}
    });
  },true);
  var f=document.getElementById('feedurl');
  if(f){f.value=new URL(f.getAttribute('data-href'),location.href).href;
    f.addEventListener('focus',function(){f.select();});}
})();
